"""Commit scenarios shared by the crash, race and gc tests (pool checks: pool_checks.py).

A scenario is a deterministic function of its fields: run in a killed child, replayed in
the parent against an in-memory copy of the pool, it makes the same picks, so the parent
knows exactly what the old and the new pool look like.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from datapool.pool.files import FileRef
from datapool.pool.layout import (
    FRAMES_PREFIX,
    MANIFESTS_PREFIX,
)
from datapool.pool.repository import PoolRepository
from datapool.storage import ForwardingStore, Store
from services.common import faults
from services.selector.service import SelectorService
from services.selector.session import Committed, NeedFrames, SelectionSession, SelectionSpec

F32 = npt.NDArray[np.float32]
DIM = 16
MODEL = "commit-test-model"
MIN_DISTANCE = 0.3
TOL = 1e-5
FAKE_PNG = b"\x89PNG\r\n\x1a\n"


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
