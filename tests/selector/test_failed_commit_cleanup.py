"""A commit whose data writes fail (here: a real full disk) deletes what it wrote and the run's
frames at once, reports RESOURCE_EXHAUSTED naming the file, and its session commits no more."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from selector_helpers import clustered_unit_vectors, file_ref, rendered_picks, select, spec
from small_disk import fill, tmpfs

from datapool.errors import DatapoolError, FailedPrecondition
from datapool.pool.gc import collect_garbage, discard_commit
from datapool.pool.repository import PoolRepository
from datapool.storage import LocalStore
from services.selector.service import SelectorService


def files_in(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_commit_failing_on_a_full_disk_removes_its_objects_and_frames(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", size_kib=256) as disk:
        (disk / "pool").mkdir()
        store = LocalStore(disk / "pool")
        repo = PoolRepository(store)
        service = SelectorService()
        session = select(
            service, repo, spec("s", n_samples=3), {file_ref("a.mp4"): clustered_unit_vectors(3, 3, 4)}
        )
        frames = rendered_picks(session)
        for key in frames.values():
            store.put(key, b"png")
        store.put("frames/another-run/kept.png", b"png")
        fill(disk)
        # One page left: the commit's first data object fits, the next one does not.
        filler = disk / "filler"
        os.truncate(filler, filler.stat().st_size - 4096)

        with pytest.raises(DatapoolError) as failed:
            service.commit("s", "t", frames)
        assert failed.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "cannot write the pool's data objects: disk full writing" in str(failed.value)
        assert files_in(disk / "pool") == ["frames/another-run/kept.png"]
        with pytest.raises(FailedPrecondition, match="its commit failed writing the pool"):
            service.commit("s", "t", frames)

        filler.unlink()
        assert repo.newest_version() == 0
        report = collect_garbage(store, min_age_s=0)
        assert [o.key for o in report.deleted] == ["frames/another-run/kept.png"]


def test_a_commit_whose_manifest_landed_is_never_discarded(tmp_path: Path) -> None:
    repo = PoolRepository(LocalStore(tmp_path))
    service = SelectorService()
    session = select(
        service, repo, spec("s", n_samples=2), {file_ref("a.mp4"): clustered_unit_vectors(4, 2, 3)}
    )
    service.commit("s", "t", rendered_picks(session))
    manifest = repo.newest_manifest()
    assert manifest is not None
    before = files_in(tmp_path)
    assert discard_commit(repo, manifest.commit_id, manifest.version, ["frames/run-s/x.png"]) == 0
    assert files_in(tmp_path) == before
