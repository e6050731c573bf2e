"""The run report: what one run did, as the scheduler fills it and the CLI reads it.

One typed shape on both sides of the wire. The scheduler's stages fill a `RunReport`;
the pool's JSON report (`to_json`) keeps the keys tests and users read; the CLI turns
that JSON back into a `RunReport` (`from_json`), which also accepts the short report of
a failed run (`run_id`, `state`, `error`), every count then zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PoolPoint:
    """The pool at one moment: its manifest version and frame count."""

    version: int = 0
    frames: int = 0


@dataclass(frozen=True)
class ProcessedFile:
    path: str
    size: int
    frames: int
    frames_embedded: int
    from_cache: bool
    # Only for files whose vectors came from the embedding cache.
    frames_from_cache: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "frames": self.frames,
            "frames_embedded": self.frames_embedded,
        }
        if self.frames_from_cache is not None:
            out["frames_from_cache"] = self.frames_from_cache
        out["from_cache"] = self.from_cache
        return out


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class FileCounts:
    listed: int = 0
    media: int = 0
    new: int = 0
    process_all: bool = False
    # Why a run found nothing new; only then set.
    note: str | None = None
    processed: list[ProcessedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


@dataclass(frozen=True)
class ModelInfo:
    """The model and backend that embed a run, as the embedders describe them."""

    name: str
    dim: int
    backend: str
    backend_reason: str
    numbering: str


@dataclass(frozen=True)
class SelectionCounts:
    candidates: int
    n_samples: int | None
    proportion_samples: float | None
    min_distance: float
    picked: int


# FrameCounts and CacheCounts are filled in place by the scheduler's stages while the run goes.
@dataclass
class FrameCounts:
    decoded: int = 0
    embedded: int = 0
    from_cache: int = 0
    selected: int = 0


@dataclass
class CacheCounts:
    files_from_cache: int = 0
    frames_from_cache: int = 0
    files_embedded: int = 0
    unusable_entries: int = 0
    entries_written: int = 0
    write_failures: int = 0


@dataclass(frozen=True)
class SelectedFrame:
    frame_name: str
    source: str
    frame_index: int
    distance: float


@dataclass
class RunReport:
    run_id: str
    started_at: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    pool_before: PoolPoint | None = None
    files: FileCounts = field(default_factory=FileCounts)
    model: ModelInfo | None = None
    selection: SelectionCounts | None = None
    frames: FrameCounts = field(default_factory=FrameCounts)
    embedding_cache: CacheCounts = field(default_factory=CacheCounts)
    selected: list[SelectedFrame] = field(default_factory=list)
    tag: str = ""
    pool_after: PoolPoint | None = None
    # The selector's tries at the pool commit (optimistic, retried on a newer pool); 0 when not
    # known: a run ended from an earlier attempt's commit found in the pool (run/resume.py).
    commit_attempts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    finished_at: str = ""
    # Set when the run ended: "COMPLETED", or "FAILED" with `error`.
    state: str = ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """The report as the pool and GetRunReport carry it; keys as they always were."""
        if self.error:
            return {"run_id": self.run_id, "state": self.state, "error": self.error}
        files: dict[str, Any] = {
            "listed": self.files.listed,
            "media": self.files.media,
            "new": self.files.new,
            "process_all": self.files.process_all,
        }
        if self.files.note is not None:
            files["note"] = self.files.note
        files["processed"] = [f.to_json() for f in self.files.processed]
        files["skipped"] = [asdict(s) for s in self.files.skipped]
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "config": self.config,
            "pool_before": asdict(self.pool_before or PoolPoint()),
            "files": files,
        }
        if self.model is not None:
            model = asdict(self.model)
            del model["dim"]  # not part of the report's model section
            out["model"] = model
        if self.selection is not None:
            out["selection"] = asdict(self.selection)
        out["frames"] = asdict(self.frames)
        out["embedding_cache"] = asdict(self.embedding_cache)
        # A pick whose distance the pool never recorded (committed before it kept them) is NaN in
        # memory and null in the JSON: NaN is not JSON. (The first pick into an empty pool keeps
        # its infinite distance, written as Infinity as it always was.)
        out["selected"] = [
            {**asdict(s), "distance": None if math.isnan(s.distance) else s.distance} for s in self.selected
        ]
        out["tag"] = self.tag
        out["pool_after"] = asdict(self.pool_after or PoolPoint())
        out["commit_attempts"] = self.commit_attempts
        out["seconds"] = dict(self.seconds)
        out["finished_at"] = self.finished_at
        if self.state:
            out["state"] = self.state
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReport:
        """A report read back, every section `to_json` writes; sections a failed run's report
        lacks stay empty. Raises TypeError/ValueError/AttributeError on a malformed one."""
        files = data.get("files", {})
        pool_before, pool_after = data.get("pool_before"), data.get("pool_after")
        # The report's model section leaves the dim out; no report shows it.
        model = data.get("model")
        selection = data.get("selection")
        return cls(
            run_id=str(data.get("run_id", "")),
            started_at=str(data.get("started_at", "")),
            config=dict(data.get("config", {})),
            pool_before=PoolPoint(**pool_before) if pool_before is not None else None,
            model=ModelInfo(dim=0, **model) if model is not None else None,
            selection=SelectionCounts(**selection) if selection is not None else None,
            embedding_cache=CacheCounts(**data.get("embedding_cache", {})),
            selected=[
                SelectedFrame(**{**s, "distance": math.nan if s["distance"] is None else s["distance"]})
                for s in data.get("selected", [])
            ],
            commit_attempts=int(data.get("commit_attempts", 0)),
            finished_at=str(data.get("finished_at", "")),
            files=FileCounts(
                listed=files.get("listed", 0),
                media=files.get("media", 0),
                new=files.get("new", 0),
                process_all=files.get("process_all", False),
                note=files.get("note"),
                processed=[ProcessedFile(**f) for f in files.get("processed", [])],
                skipped=[SkippedFile(**s) for s in files.get("skipped", [])],
            ),
            frames=FrameCounts(**data.get("frames", {})),
            tag=data.get("tag", ""),
            pool_after=PoolPoint(**pool_after) if pool_after is not None else None,
            seconds=dict(data.get("seconds", {})),
            state=data.get("state", ""),
            error=data.get("error", ""),
        )
