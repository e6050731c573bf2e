"""Pool snapshots and the invariants every commit test checks: manifests contiguous and
cumulative, naming only objects that exist; no frame twice; no two frames too close."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from commit_support import DIM, F32, MIN_DISTANCE, TOL

from datapool.pool.files import FileRef
from datapool.pool.layout import DATA_PREFIX, FRAMES_PREFIX, MANIFESTS_PREFIX, PoolManifest, manifest_version
from datapool.pool.repository import PoolRepository


@dataclass(frozen=True)
class SegmentView:
    """A segment's content, without the commit id and clock that differ between replays."""

    version: int
    run_id: str
    tag: str
    frames: tuple[tuple[str, str, str, int, str, int], ...]
    embeddings: bytes
    processed: tuple[FileRef, ...]


@dataclass(frozen=True)
class PoolView:
    version: int
    model: str
    dim: int
    segments: tuple[SegmentView, ...]

    @property
    def frame_count(self) -> int:
        return sum(len(s.frames) for s in self.segments)

    def describe(self) -> str:
        return f"v{self.version} [{', '.join(s.run_id for s in self.segments)}]"


def pool_view(repo: PoolRepository) -> PoolView:
    """The full exported state of the newest version: entries, embedding bytes, processed files, tags."""
    manifest = repo.newest_manifest()
    if manifest is None:
        return PoolView(0, "", 0, ())
    segments = []
    for data in repo.load_segments(manifest.segments, manifest.dim):
        assert data.embeddings is not None
        s = data.segment
        frames = tuple(
            (f.frame_name, f.key, f.file.path, f.file.size, f.file.etag, f.frame_index) for f in data.frames
        )
        processed = tuple(sorted(repo.load_processed(s)))
        segments.append(SegmentView(s.version, s.run_id, s.tag, frames, data.embeddings.tobytes(), processed))
    return PoolView(manifest.version, manifest.model, manifest.dim, tuple(segments))


def pool_embeddings(repo: PoolRepository) -> F32:
    manifest = repo.newest_manifest()
    if manifest is None:
        return np.zeros((0, DIM), dtype=np.float32)
    return repo.load_state(manifest).embeddings


def check_manifests(repo: PoolRepository) -> list[PoolManifest]:
    """Versions 1..N, each cumulative on the one before, and every object they name exists."""
    store = repo.store
    versions = [v for v in (manifest_version(i.key) for i in store.list(MANIFESTS_PREFIX)) if v is not None]
    assert versions == list(range(1, len(versions) + 1)), f"manifest versions not contiguous: {versions}"
    existing = {i.key for i in store.list(DATA_PREFIX)} | {i.key for i in store.list(FRAMES_PREFIX)}
    manifests: list[PoolManifest] = []
    for v in versions:
        m = repo.manifest(v)
        assert m is not None
        if manifests:
            assert m.segments[:-1] == manifests[-1].segments, f"manifest {v} is not cumulative"
        assert m.segments and m.segments[-1].version == v
        manifests.append(m)
    if manifests:
        for segment in manifests[-1].segments:
            keys = dataclasses.astuple(segment.keys)
            missing = [k for k in keys if k not in existing]
            assert not missing, f"manifest names missing data objects {missing}"
            frames_missing = [f.key for f in repo.load_frames(segment) if f.key not in existing]
            assert not frames_missing, f"manifest names missing frames {frames_missing}"
    return manifests


def check_invariants(repo: PoolRepository) -> PoolView:
    """No frame twice, no two frames closer than the min distance, manifests whole and contiguous."""
    check_manifests(repo)
    view = pool_view(repo)
    identities = [(f[2], f[3], f[4], f[5]) for s in view.segments for f in s.frames]
    assert len(identities) == len(set(identities)), "a frame identity is pooled twice"
    names = [f[0] for s in view.segments for f in s.frames]
    assert len(names) == len(set(names)), "a frame name is pooled twice"
    vectors = pool_embeddings(repo)
    assert min_pairwise_distance(vectors) >= MIN_DISTANCE - TOL
    processed = {f for s in view.segments for f in s.processed}
    pooled_files = {(f[2], f[3], f[4]) for s in view.segments for f in s.frames}
    assert pooled_files <= {(f.path, f.size, f.etag) for f in processed}
    return view


def min_pairwise_distance(rows: F32) -> float:
    if len(rows) < 2:
        return float("inf")
    a = rows.astype(np.float64)
    squared = (a * a).sum(1)[:, None] + (a * a).sum(1)[None, :] - 2.0 * (a @ a.T)
    np.fill_diagonal(squared, np.inf)
    return float(np.sqrt(np.maximum(squared, 0.0)).min())
