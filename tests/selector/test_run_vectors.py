"""A Select's vectors past --max-run-memory-mb live in a spill file: same picks, file gone after."""

from __future__ import annotations

import errno
import gc
import os
from pathlib import Path

import numpy as np
import pytest
from selector_helpers import F32, clustered_unit_vectors, file_ref, rendered_picks, spec

from datapool.errors import ResourceExhausted
from datapool.pool.repository import PoolRepository
from services.selector.model import FileRef, Pick
from services.selector.row_blocks import RowBlocks
from services.selector.run_vectors import RunVectors
from services.selector.service import SelectorService
from services.selector.session import Committed, SelectionSession, SelectionSpec

DIM = 32


def _spill_maps(directory: Path) -> list[str]:
    """This process's memory maps of files in `directory` (the spill file has no name left,
    so the kernel lists it as `<directory>/#inode (deleted)`)."""
    with open("/proc/self/maps") as f:
        return [line for line in f if f" {directory}/" in line]


def _files() -> dict[FileRef, F32]:
    vectors = clustered_unit_vectors(seed=31, clusters=6, per_cluster=20)
    return {file_ref(f"clip{i}.mp4"): vectors[i * 30 : (i + 1) * 30] for i in range(4)}


def _run(
    service: SelectorService, repo: PoolRepository, selection: SelectionSpec, spill_dir: Path
) -> SelectionSession:
    stream = service.open_select(selection, repo)
    for file, vectors in _files().items():
        stream.add_batch(file, list(range(len(vectors))), vectors.tobytes(), DIM, "float32")
        stream.complete_file(file, len(vectors), "video")
    if service.max_run_memory_bytes == 0:
        # Spilled while the run goes on: the file holds every row (and, once more, the open
        # rows of partly pooled files), memory none.
        assert stream.run_vectors.memory_bytes == 0
        assert stream.run_vectors.spilled_bytes >= 120 * DIM * 4
        assert stream.run_vectors.spill_file_bytes >= stream.run_vectors.spilled_bytes
        assert _spill_maps(spill_dir)
    return service.finish_select(stream)


def _summary(picks: list[Pick]) -> list[tuple[str, int, float, int]]:
    return [(p.file.path, p.frame_index, p.distance, p.row) for p in picks]


def test_a_run_past_its_memory_budget_spills_and_picks_what_memory_picks(
    repo: PoolRepository, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    in_memory = SelectorService()
    spilling = SelectorService(max_run_memory_bytes=0, spill_dir=str(spill_dir))
    # A pool first, which also leaves clip0 partly pooled (its open rows are kept apart).
    first = _run(in_memory, repo, spec("first", n_samples=5), spill_dir)
    assert isinstance(in_memory.commit("first", "t0", rendered_picks(first)), Committed)
    memory_run = _run(in_memory, repo, spec("mem", n_samples=25), spill_dir)
    spilled_run = _run(spilling, repo, spec("spill", n_samples=25), spill_dir)
    assert _summary(spilled_run.picks) == _summary(memory_run.picks)
    assert len(spilled_run.picks) == 25

    # Commit reads the picked rows from the spill file.
    assert isinstance(spilling.commit("spill", "t1", rendered_picks(spilled_run)), Committed)
    pool = repo.load_state(repo.newest_manifest())
    files = _files()
    want = np.stack([files[p.file][p.frame_index] for p in spilled_run.picks])
    row_of = {f.identity: i for i, f in enumerate(pool.frames)}
    got = np.stack([pool.embeddings[row_of[p.identity]] for p in spilled_run.picks])
    np.testing.assert_allclose(got, want, rtol=1e-3)

    # Once the session is closed nothing maps the spill file: its disk space is returned.
    spilling.close_session("spill")
    del spilled_run
    gc.collect()
    assert _spill_maps(spill_dir) == []
    assert list(spill_dir.iterdir()) == []


def test_blocks_within_the_budget_stay_in_memory_and_the_rest_spill(tmp_path: Path) -> None:
    run = RunVectors(max_memory_bytes=100 * 4, directory=str(tmp_path))
    small = np.ones((10, 4), dtype=np.float32)
    kept = run.keep(small)
    assert run.memory_bytes == small.nbytes and run.spill_file_bytes == 0
    spilled = run.keep(np.full((20, 4), 2.0, dtype=np.float32))
    assert run.spilled_bytes == 20 * 4 * 4 and run.spill_file_bytes > 0
    assert not isinstance(kept, np.memmap) and isinstance(spilled.base, np.memmap)
    np.testing.assert_array_equal(spilled, 2.0)
    # selector_rs keeps references to kept blocks, so they are read-only.
    with pytest.raises(ValueError, match="read-only"):
        spilled[0, 0] = 3.0
    with pytest.raises(ValueError, match="read-only"):
        kept[0, 0] = 3.0


def test_a_full_spill_disk_fails_the_select_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # A full disk cannot be made here; what matters is that it is found before any write.
    monkeypatch.setattr(os, "posix_fallocate", full)
    run = RunVectors(max_memory_bytes=0, directory=str(tmp_path))
    with pytest.raises(ResourceExhausted, match=r"spill file in .*No space left.*--spill-dir"):
        run.keep(np.ones((3, 4), dtype=np.float32))
    assert run.spilled_bytes == 0


def test_row_blocks_read_like_their_concatenation() -> None:
    rng = np.random.default_rng(5)
    parts = [rng.normal(size=(n, 3)).astype(np.float32) for n in (4, 0, 1, 6)]
    whole = np.concatenate(parts)
    rows = RowBlocks(parts, 3)
    assert rows.shape == whole.shape
    pick = [10, 0, 4, 5, 3, -1]
    np.testing.assert_array_equal(rows[pick], whole[pick])
    np.testing.assert_array_equal(rows[4], whole[4])
    assert [start for start, _ in rows.blocks()] == [0, 4, 5]
    with pytest.raises(IndexError):
        rows[[11]]
