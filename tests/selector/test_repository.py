from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from selector_helpers import clustered_unit_vectors, file_ref, rendered_picks, select, spec

from datapool.errors import FailedPrecondition
from datapool.pool.files import FileRef
from datapool.pool.layout import PoolManifest, PoolSegment, SegmentKeys, manifest_key, manifest_version
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolFrame
from datapool.storage import LocalStore
from services.selector.queries import export_chunks, pool_summary, processed_file_chunks
from services.selector.service import SelectorService
from services.selector.session import Committed


def _segment(version: int, frames: int, tag: str = "t") -> PoolSegment:
    commit_id = f"{version:032x}"
    keys = SegmentKeys.for_commit(commit_id)
    return PoolSegment(commit_id, f"run{version}", version, tag, 1_700_000_000_000 + version, frames, keys)


def test_manifest_round_trip() -> None:
    manifest = PoolManifest(2, "c2", "run2", 123, "m", 1280, (_segment(1, 3), _segment(2, 0, tag="")))
    text = json.dumps(manifest.to_json())
    assert PoolManifest.from_json(json.loads(text)) == manifest
    assert json.loads(text)["format"] == 1
    assert json.loads(text)["segments"][0]["entries"] == f".datapool/data/{1:032x}/entries.json"
    assert manifest.frame_count == 3
    assert [s.version for s in manifest.tagged_segments()] == [1]


def test_manifest_keys_sort_by_version() -> None:
    keys = [manifest_key(v) for v in (1, 9, 10, 123456)]
    assert keys == sorted(keys)
    assert manifest_key(42) == ".datapool/manifests/00000000000000000042.json"
    assert manifest_version(manifest_key(42)) == 42
    assert manifest_version(".datapool/manifests/42.json") is None
    assert manifest_version(".datapool/manifests/00000000000000000042.json.bak") is None


def test_empty_pool(repo: PoolRepository) -> None:
    assert repo.newest_version() == 0
    assert repo.newest_manifest() is None
    state = repo.load_state(None)
    assert state.version == 0 and len(state.embeddings) == 0
    summary = pool_summary(repo)
    assert (summary.version, summary.frame_count, summary.dim, summary.model, summary.tags) == (
        0,
        0,
        0,
        "",
        (),
    )
    assert list(processed_file_chunks(repo)) == []
    assert list(export_chunks(repo, "", with_vectors=True)) == []


def _commit_segment(repo: PoolRepository, base: PoolManifest | None, rows: int, tag: str) -> PoolManifest:
    version = (base.version if base else 0) + 1
    commit_id = f"{version:032x}"
    file = FileRef(f"v{version}.mp4", 10, "e")
    frames = [PoolFrame(f"v{version}-{i}-mp4.png", f"frames/{version}/{i}", file, i) for i in range(rows)]
    vectors = np.full((rows, 4), version, dtype=np.float32)
    keys = repo.write_segment_data(commit_id, frames, vectors, [file])
    segment = PoolSegment(commit_id, f"run{version}", version, tag, 0, rows, keys)
    segments = (*(base.segments if base else ()), segment)
    manifest = PoolManifest(version, commit_id, f"run{version}", 0, "m", 4, segments)
    assert repo.create_manifest(manifest)
    return manifest


def test_listing_finds_newest_among_unrelated_objects(repo: PoolRepository, pool_root: Path) -> None:
    first = _commit_segment(repo, None, 2, "a")
    second = _commit_segment(repo, first, 3, "b")
    for junk in ("manifests/notes.txt", "manifests/99999999999999999999.json.tmp", "manifests/7.json", "zzz"):
        path = pool_root / ".datapool" / junk
        path.write_text("{}")
    (pool_root / "unrelated.mp4").write_bytes(b"x")
    assert repo.newest_version() == 2
    newest = repo.newest_manifest()
    assert newest == second
    state = repo.load_state(newest)
    assert state.version == 2 and state.embeddings.shape == (5, 4)
    assert state.embeddings[:, 0].tolist() == [1, 1, 2, 2, 2]
    summary = pool_summary(repo)
    assert [t.tag for t in summary.tags] == ["a", "b"] and summary.frame_count == 5


def test_create_manifest_never_overwrites(repo: PoolRepository) -> None:
    first = _commit_segment(repo, None, 1, "a")
    rival = PoolManifest(1, "someone-else", "r", 0, "m", 4, ())
    assert not repo.create_manifest(rival)
    assert repo.manifest(1) == first


def test_export_by_tag_and_chunks(repo: PoolRepository) -> None:
    manifest = _commit_segment(repo, None, 5, "a")
    _commit_segment(repo, manifest, 3, "b")
    chunks = list(export_chunks(repo, "b", with_vectors=True, chunk=2))
    assert [len(c.frames) for c in chunks] == [2, 1]
    assert {c.tag_name for c in chunks} == {"b"}
    assert all(c.vectors is not None and c.vectors.shape == (len(c.frames), 4) for c in chunks)
    whole = list(export_chunks(repo, "initial-tag", with_vectors=False))
    assert sum(len(c.frames) for c in whole) == 8 and all(c.vectors is None for c in whole)


def test_processed_files_deduplicated_and_chunked(tmp_path: Path) -> None:
    repo = PoolRepository(LocalStore(tmp_path))
    same = FileRef("same.mp4", 1, "e")
    segments = []
    for version in (1, 2):
        commit_id = f"{version:032x}"
        files = [same, *(FileRef(f"f{version}-{i}.mp4", i, "e") for i in range(3))]
        keys = repo.write_segment_data(commit_id, [], np.zeros((0, 4), np.float32), files)
        segments.append(PoolSegment(commit_id, "r", version, "", 0, 0, keys))
        assert repo.create_manifest(PoolManifest(version, commit_id, "r", 0, "m", 4, tuple(segments)))
    chunks = list(processed_file_chunks(repo, chunk=4))
    flat = [f for c in chunks for f in c]
    assert [len(c) for c in chunks] == [4, 3]
    assert len(set(flat)) == len(flat) == 7


def _stored_embeddings(pool_root: Path, manifest: PoolManifest) -> np.ndarray:
    stored: np.ndarray = np.load(pool_root / manifest.segments[-1].keys.embeddings, allow_pickle=False)
    return stored


def _commit_vectors(repo: PoolRepository, vectors: np.ndarray, commit_id: str = "c" * 32) -> PoolManifest:
    file = FileRef("v.mp4", 10, "e")
    frames = [PoolFrame(f"v-{i}-mp4.png", f"frames/{i}", file, i) for i in range(len(vectors))]
    keys = repo.write_segment_data(commit_id, frames, vectors, [file])
    segment = PoolSegment(commit_id, "run", 1, "t", 0, len(vectors), keys)
    manifest = PoolManifest(1, commit_id, "run", 0, "m", vectors.shape[1], (segment,))
    assert repo.create_manifest(manifest)
    return manifest


def test_embeddings_stored_as_float16_when_lossless(repo: PoolRepository, pool_root: Path) -> None:
    rng = np.random.default_rng(0)
    # As the embedders send them: float16 values, held as float32.
    vectors = rng.normal(size=(50, 16)).astype(np.float16).astype(np.float32)
    manifest = _commit_vectors(repo, vectors)
    stored = _stored_embeddings(pool_root, manifest)
    assert stored.dtype == np.float16 and stored.shape == (50, 16)
    loaded = repo.load_state(manifest).embeddings
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, vectors)
    (data,) = repo.load_segments(manifest.segments, 16)
    assert data.embeddings is not None and data.embeddings.dtype == np.float32
    np.testing.assert_array_equal(data.embeddings, vectors)


@pytest.mark.parametrize("odd_value", [0.1, 1e5, 1e-8], ids=["rounded", "overflows", "underflows"])
def test_embeddings_stay_float32_when_float16_would_lose_values(
    repo: PoolRepository, pool_root: Path, odd_value: float
) -> None:
    vectors = np.full((4, 8), 0.5, dtype=np.float32)
    vectors[2, 3] = odd_value  # one value float16 cannot hold exactly
    manifest = _commit_vectors(repo, vectors)
    assert _stored_embeddings(pool_root, manifest).dtype == np.float32
    np.testing.assert_array_equal(repo.load_state(manifest).embeddings, vectors)


def test_old_float32_segments_still_load(repo: PoolRepository, pool_root: Path) -> None:
    vectors = np.random.default_rng(1).normal(size=(6, 8)).astype(np.float16).astype(np.float32)
    manifest = _commit_vectors(repo, vectors)
    # Rewrite the object as a pool from before float16 storage wrote it.
    path = pool_root / manifest.segments[0].keys.embeddings
    path.unlink()
    np.save(path, vectors, allow_pickle=False)
    assert _stored_embeddings(pool_root, manifest).dtype == np.float32
    loaded = repo.load_state(manifest).embeddings
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, vectors)


def test_empty_segment_embeddings(repo: PoolRepository, pool_root: Path) -> None:
    manifest = _commit_vectors(repo, np.zeros((0, 8), np.float32))
    assert repo.load_state(manifest).embeddings.shape == (0, 8)


def test_embeddings_of_another_dtype_are_refused(repo: PoolRepository, pool_root: Path) -> None:
    manifest = _commit_vectors(repo, np.ones((3, 8), np.float32))
    path = pool_root / manifest.segments[0].keys.embeddings
    path.unlink()
    np.save(path, np.ones((3, 8), np.float64), allow_pickle=False)
    with pytest.raises(FailedPrecondition, match=r"float64\(3, 8\), expected float16 or float32\(3, 8\)"):
        repo.load_state(manifest)


def test_committed_picks_streamed_as_float16_are_stored_as_float16(
    service: SelectorService, repo: PoolRepository, pool_root: Path
) -> None:
    vectors = clustered_unit_vectors(seed=3, clusters=4, per_cluster=5)
    session = select(service, repo, spec("f16", n_samples=6), {file_ref("a.mp4"): vectors}, dtype="float16")
    assert isinstance(service.commit("f16", "t", rendered_picks(session)), Committed)
    manifest = repo.newest_manifest()
    assert manifest is not None
    assert _stored_embeddings(pool_root, manifest).dtype == np.float16
    picked = vectors[[p.frame_index for p in session.picks]].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(repo.load_state(manifest).embeddings, picked)
