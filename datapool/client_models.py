"""What the Python client hands back: enums, run and tag records, and its one error type.

Names follow the Lightly client's, so scripts written for it read the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import grpc

from datapool.v1 import scheduler_pb2


class DatasetType(StrEnum):
    VIDEOS = "VIDEOS"
    IMAGES = "IMAGES"


class DatasourcePurpose(StrEnum):
    INPUT = "INPUT"
    LIGHTLY = "LIGHTLY"
    # One location for both: the pool is its reserved `.lightly/` prefix, never listed as input.
    INPUT_OUTPUT = "INPUT_OUTPUT"


class RunState(StrEnum):
    OPEN = "OPEN"
    EMBEDDING = "EMBEDDING"
    SELECTING = "SELECTING"
    COMMITTING = "COMMITTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    # Waiting for a free slot of the scheduler's --max-concurrent-runs; the message has its position.
    QUEUED = "QUEUED"


class ApiError(Exception):
    """A call the scheduler refused or could not serve; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ComputeWorkerRunInfo:
    state: RunState
    message: str
    progress: dict[str, int] = field(default_factory=dict)

    def in_end_state(self) -> bool:
        return self.state in (RunState.COMPLETED, RunState.FAILED)

    def ended_successfully(self) -> bool:
        return self.state == RunState.COMPLETED


@dataclass(frozen=True)
class ComputeWorkerRun:
    id: str
    dataset_id: str
    state: RunState
    message: str
    created_at: int
    last_modified_at: int
    tag_names: list[str]
    pool_version: int


@dataclass(frozen=True)
class TagData:
    name: str
    run_id: str
    frame_count: int
    created_at: int


def run_state(value: int) -> RunState:
    return RunState(scheduler_pb2.RunState.Name(value))  # type: ignore[arg-type]


def run_info(run: scheduler_pb2.Run) -> ComputeWorkerRunInfo:
    progress = {
        "files_total": run.progress.files_total,
        "files_done": run.progress.files_done,
        "files_skipped": run.progress.files_skipped,
        "frames_embedded": run.progress.frames_embedded,
    }
    return ComputeWorkerRunInfo(state=run_state(run.state), message=run.message, progress=progress)


def run_record(run: scheduler_pb2.Run) -> ComputeWorkerRun:
    return ComputeWorkerRun(
        id=run.id,
        dataset_id=run.dataset_id,
        state=run_state(run.state),
        message=run.message,
        created_at=run.created_unix_ms,
        last_modified_at=run.updated_unix_ms,
        tag_names=list(run.tag_names),
        pool_version=run.pool_version,
    )


def api_error(e: grpc.RpcError) -> ApiError:
    if isinstance(e, grpc.Call):
        return ApiError(e.code(), e.details() or "")
    return ApiError(grpc.StatusCode.UNKNOWN, str(e))
