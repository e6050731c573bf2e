"""Commit scenarios, pool snapshots and invariant checks shared by the crash, race and gc tests.

A scenario is a deterministic function of its fields: run in a killed child, replayed in
the parent against an in-memory copy of the pool, it makes the same picks, so the parent
knows exactly what the old and the new pool look like.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from datapool.pool.files import FileRef
from datapool.pool.layout import (
    DATA_PREFIX,
    FRAMES_PREFIX,
    MANIFESTS_PREFIX,
    ROOT,
    PoolManifest,
    manifest_version,
)
from datapool.pool.repository import PoolRepository
from datapool.storage import ForwardingStore, ObjectInfo, ObjectNotFound, Store
from services.common import faults
from services.selector.service import SelectorService
from services.selector.session import Committed, NeedFrames, SelectionSession, SelectionSpec

F32 = npt.NDArray[np.float32]
DIM = 16
MODEL = "commit-test-model"
MIN_DISTANCE = 0.3
TOL = 1e-5
FAKE_PNG = b"\x89PNG\r\n\x1a\n"


# -- scenarios ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One writer's run: its files, how many frames it may add, and an optional rival writer.

    rival: "" (none), "first" (the rival commits after our Select, before our Commit, so
    our commit catches up) or "at_put" (the rival commits just before our manifest put,
    so our put loses the race).
    """

    run: str
    files: tuple[str, ...]
    n_samples: int = 3
    rival: str = ""
    rival_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Scenario:
        return Scenario(
            run=str(obj["run"]),
            files=tuple(obj["files"]),
            n_samples=int(obj["n_samples"]),
            rival=str(obj["rival"]),
            rival_files=tuple(obj["rival_files"]),
        )


def file_vectors(path: str, clusters: int = 2, per_cluster: int = 3) -> F32:
    """Tight clusters around random directions, seeded by the path: same file, same vectors."""
    rng = np.random.default_rng(zlib.crc32(path.encode()))
    centres = rng.normal(size=(clusters, DIM))
    rows = np.repeat(centres, per_cluster, axis=0) + 0.03 * rng.normal(size=(clusters * per_cluster, DIM))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32)


def file_ref(path: str) -> FileRef:
    return FileRef(path, 1000 + len(path), f"etag-{zlib.crc32(path.encode()):08x}")


def select(
    service: SelectorService, repo: PoolRepository, spec: SelectionSpec, paths: tuple[str, ...]
) -> None:
    stream = service.open_select(spec, repo)
    for path in paths:
        vectors = file_vectors(path)
        file = file_ref(path)
        stream.add_batch(file, list(range(len(vectors))), vectors.astype("<f4").tobytes(), DIM, "float32")
        stream.complete_file(file, len(vectors), "video")
    service.finish_select(stream)


def render(store: Store, run_id: str, frame_names: list[str]) -> dict[str, str]:
    """What the embedder does before a commit: one PNG per pick, under the run's folder."""
    keys = {}
    for name in frame_names:
        key = f"{FRAMES_PREFIX}{run_id}/{name}"
        store.put(key, FAKE_PNG + name.encode())
        keys[name] = key
    return keys


def commit_run(service: SelectorService, store: Store, session: SelectionSession, tag: str) -> Committed:
    """Renders and commits until the selector stops asking for frames, as the scheduler does."""
    frames = render(store, session.spec.run_id, [p.frame_name for p in session.picks])
    outcome = service.commit(session.spec.session_id, tag, frames)
    while isinstance(outcome, NeedFrames):
        frames = render(store, session.spec.run_id, [p.frame_name for p in outcome.picks])
        outcome = service.commit(session.spec.session_id, tag, frames)
    return outcome


def writer_run(store: Store, run: str, paths: tuple[str, ...], n_samples: int) -> Committed:
    """A whole run by one writer with its own selector session."""
    service = SelectorService()
    repo = PoolRepository(store)
    spec = SelectionSpec(f"{run}-session", run, n_samples, -1.0, MIN_DISTANCE, MODEL)
    select(service, repo, spec, paths)
    return commit_run(service, store, service.sessions.get(spec.session_id), f"tag-{run}")


class _RivalAtPut(ForwardingStore):
    """Delegates to a store; the first manifest put first lets a rival writer commit."""

    def __init__(self, inner: Store, rival: Callable[[], None]) -> None:
        super().__init__(inner)
        self._rival: Callable[[], None] | None = rival

    def put_if_absent(self, key: str, data: bytes) -> bool:
        rival, self._rival = self._rival, None
        if rival is not None and key.startswith(MANIFESTS_PREFIX):
            rival()
        return self.inner.put_if_absent(key, data)


@contextlib.contextmanager
def _faults_disarmed() -> Iterator[None]:
    folder = os.environ.pop(faults.ENV, None)
    try:
        yield
    finally:
        if folder is not None:
            os.environ[faults.ENV] = folder


def run_scenario(
    store: Store,
    scenario: Scenario,
    on_committing: Callable[[], None] = lambda: None,
    on_rival_committed: Callable[[], None] = lambda: None,
) -> Committed:
    """The main writer's run, with its rival if any; on_committing fires as Commit begins."""

    def rival() -> None:
        # Armed fault points are meant for the main writer's commit, not the rival's.
        with _faults_disarmed():
            writer_run(store, f"{scenario.run}-rival", scenario.rival_files, scenario.n_samples)
        on_rival_committed()

    service = SelectorService()
    main_store = _RivalAtPut(store, rival) if scenario.rival == "at_put" else store
    repo = PoolRepository(main_store)
    spec = SelectionSpec(
        f"{scenario.run}-session", scenario.run, scenario.n_samples, -1.0, MIN_DISTANCE, MODEL
    )
    select(service, repo, spec, scenario.files)
    session = service.sessions.get(spec.session_id)
    if scenario.rival == "first":
        rival()
    on_committing()
    return commit_run(service, main_store, session, f"tag-{scenario.run}")


# -- stores for the parent's bookkeeping ----------------------------------------------------


class MemoryStore(Store):
    """A pool in a dict, for replaying scenarios; copies are cheap and independent."""

    def __init__(self, objects: Mapping[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self._lock = threading.Lock()

    def copy(self) -> MemoryStore:
        with self._lock:
            return MemoryStore(self.objects)

    def describe(self) -> str:
        return "memory store"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted((k, len(v)) for k, v in self.objects.items() if k.startswith(prefix))
        return iter([ObjectInfo(k, n, str(n)) for k, n in items])

    def stat(self, key: str) -> ObjectInfo | None:
        with self._lock:
            data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data), str(len(data)))

    def read(self, key: str) -> bytes:
        with self._lock:
            data = self.objects.get(key)
        if data is None:
            raise ObjectNotFound(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self.objects[key] = bytes(data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self.objects:
                return False
            self.objects[key] = bytes(data)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        raise NotImplementedError


class CachingReads(ForwardingStore):
    """A store whose pool objects are read once: every one is immutable once written.

    Listings and writes go to the store every time, so what exists and what a commit
    creates is always the store's own word.
    """

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self._cache: dict[str, bytes] = {}

    def read(self, key: str) -> bytes:
        if key not in self._cache:
            data = self.inner.read(key)
            if not key.startswith(ROOT):
                return data
            self._cache[key] = data
        return self._cache[key]

    def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        self.inner.delete(key)


# -- snapshots and invariants -------------------------------------------------------------


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
