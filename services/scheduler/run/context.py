"""The state one run's stages share: what was asked, who to call, what was learned so far.

Before the split, six or seven of these travelled as parameters through every function;
now each stage takes one `RunContext`. Worker threads of the embedding stage write the
`Tally` under its lock; the other stages run one at a time on the run's thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from datapool.config import RunConfig
from datapool.errors import DatapoolError
from datapool.run_report import ModelInfo, ProcessedFile, RunReport, SkippedFile
from datapool.v1 import common_pb2
from services.scheduler.run.interfaces import Embedder, Embedders, Selector


class RunFailed(DatapoolError):
    """The run cannot go on; the message says why and what to do."""


class RunObserver(Protocol):
    def set_state(self, state: int, message: str) -> None: ...

    def set_progress(self, **counts: int) -> None: ...

    def save_draft(self, report: RunReport) -> None:
        """Keeps the report as it stands right before the run's commit (run/draft.py)."""
        ...


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    dataset_type: int
    # Locations carry credentials: kept out of the repr, so no log line can show them.
    input: common_pb2.StoreLocation = field(repr=False)
    pool: common_pb2.StoreLocation = field(repr=False)
    config: RunConfig = field(repr=False)
    # 2 and up: a replica took the run over from one that stopped (services/scheduler/takeover.py).
    attempt: int = 1
    # The report an earlier attempt saved right before its commit, if it got that far (run/draft.py).
    draft: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class Tally:
    """What the embedding stages learned beyond the report's counts (`RunReport.frames` and
    `.embedding_cache`, which they fill directly), filled by worker threads under `lock`,
    the lock that guards those counts too."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    processed: list[ProcessedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    files_done: int = 0
    decode_s: float = 0.0
    embed_s: float = 0.0


@dataclass(frozen=True)
class RunModel:
    """The model every vector of the run comes from, checked once at the run's start, and
    the embedding cache's sampling key derived from it."""

    info: ModelInfo
    sampling_key: str


@dataclass
class RunContext:
    spec: RunSpec
    observer: RunObserver
    embedders: Embedders
    selector: Selector
    replica_wait_s: float
    progress_interval_s: float
    report: RunReport
    tally: Tally = field(default_factory=Tally)
    timings: dict[str, float] = field(default_factory=dict)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)
    _model: RunModel | None = None

    @property
    def model(self) -> RunModel:
        if self._model is None:
            raise RuntimeError("the run's model is read before the model check")
        return self._model

    @model.setter
    def model(self, model: RunModel) -> None:
        self._model = model

    @property
    def base_version(self) -> int:
        """The pool version the run started from: its diff and its Select read this one."""
        if self.report.pool_before is None:
            raise RuntimeError("the run's pool is read before the listing stage")
        return self.report.pool_before.version

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Adds the time the block takes to `stage`'s seconds in the report."""
        t = time.monotonic()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.monotonic() - t

    def replica(self, avoid: set[str] | None = None, last_error: str = "") -> Embedder:
        """A connected embedder replica, waiting up to `replica_wait_s` for one to come back."""
        replica = self.embedders.wait_ready(avoid, self.replica_wait_s)
        if replica is None:
            names = ", ".join(r.address for r in self.embedders.replicas)
            raise RunFailed(
                f"no embedder answered within {self.replica_wait_s:.0f}s (embedders: {names})"
                + (f"; last error: {last_error}" if last_error else "")
                + ". Check that the embedders are running"
            )
        return replica
