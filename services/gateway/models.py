"""gRPC messages as the JSON models of Lightly's generated client (camelCase, its required fields).

Lightly ids are 24 hex digits; the scheduler's dataset and run ids have that shape already. Tags have
no id in datapool, so a tag's id is derived from its dataset and name (`tag_id`) and resolved back by
listing the dataset's tags.
"""

from __future__ import annotations

import hashlib
from typing import Any

from datapool.v1 import scheduler_pb2

USER_ID = "datapool"
WORKER_VERSION = "datapool"
# The one built-in worker `register_compute_worker` and `get_compute_worker_ids` answer with.
WORKER_ID = "da7a9001" + "0" * 16
REPORT_FILE = "report.json"

_DATASET_TYPES = {scheduler_pb2.VIDEOS: "Videos", scheduler_pb2.IMAGES: "Images"}
# Lightly's run states, closest first; an OPEN datapool run has been picked up already.
_RUN_STATES = {
    scheduler_pb2.OPEN: "INITIALIZING",
    scheduler_pb2.EMBEDDING: "EMBEDDING",
    scheduler_pb2.SELECTING: "SAMPLING",
    scheduler_pb2.COMMITTING: "SAVING_RESULTS",
    scheduler_pb2.COMPLETED: "COMPLETED",
    scheduler_pb2.FAILED: "FAILED",
    # Waiting for a slot of --max-concurrent-runs: not picked up yet.
    scheduler_pb2.QUEUED: "INITIALIZING",
}
_END_STATES = (scheduler_pb2.COMPLETED, scheduler_pb2.FAILED)


def dataset_type(lightly_type: str) -> int:
    for value, name in _DATASET_TYPES.items():
        if name.upper() == lightly_type.upper():
            return value
    raise ValueError(f"type {lightly_type!r}: datapool keeps 'Videos' or 'Images' datasets")


def dataset(ds: scheduler_pb2.Dataset) -> dict[str, Any]:
    return {
        "id": ds.id,
        "name": ds.name,
        "userId": USER_ID,
        "type": _DATASET_TYPES.get(ds.type, "Images"),
        "nSamples": 0,
        "sizeInBytes": 0,
        "createdAt": ds.created_unix_ms,
        "lastModifiedAt": ds.created_unix_ms,
    }


def in_end_state(run: scheduler_pb2.Run) -> bool:
    return run.state in _END_STATES


def docker_run(run: scheduler_pb2.Run) -> dict[str, Any]:
    """A run as DockerRunData; an ended run has one artifact, its report."""
    artifacts = [{"id": run.id, "type": "REPORT_JSON", "fileName": REPORT_FILE}] if in_end_state(run) else []
    return {
        "id": run.id,
        "userId": USER_ID,
        "dockerVersion": WORKER_VERSION,
        "state": _RUN_STATES.get(run.state, "STARTED"),
        "datasetId": run.dataset_id,
        "scheduledId": run.id,
        "createdAt": run.created_unix_ms,
        "lastModifiedAt": run.updated_unix_ms,
        "message": run.message,
        "artifacts": artifacts,
    }


def scheduled_run(run: scheduler_pb2.Run, config_id: str) -> dict[str, Any]:
    return {
        "id": run.id,
        "datasetId": run.dataset_id,
        "userId": USER_ID,
        "configId": config_id,
        "priority": "MID",
        "runsOn": [],
        "state": "DONE" if in_end_state(run) else "LOCKED",
        "createdAt": run.created_unix_ms,
        "lastModifiedAt": run.updated_unix_ms,
    }


def tag_id(dataset_id: str, name: str) -> str:
    return hashlib.sha1(f"{dataset_id}/{name}".encode()).hexdigest()[:24]


def tag(dataset_id: str, t: scheduler_pb2.TagInfo) -> dict[str, Any]:
    return {
        "id": tag_id(dataset_id, t.name),
        "datasetId": dataset_id,
        "prevTagId": None,
        "name": t.name,
        # datapool has no sample bitmasks: tags are exported by name (filenames, embeddings).
        "bitMaskData": "0x0",
        "totSize": t.frame_count,
        "createdAt": t.created_unix_ms,
        "lastModifiedAt": t.created_unix_ms,
        "runId": t.run_id or None,
    }


def embedding(ds: scheduler_pb2.Dataset) -> dict[str, Any]:
    """The pool's embeddings as the dataset's one "default" embedding; its id is the dataset's."""
    return {"id": ds.id, "name": "default", "isProcessed": True, "createdAt": ds.created_unix_ms}


def worker(created_unix_ms: int, name: str = "datapool", labels: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": WORKER_ID,
        "userId": USER_ID,
        "name": name,
        "workerType": "FULL",
        "state": "IDLE",
        "createdAt": created_unix_ms,
        "lastModifiedAt": created_unix_ms,
        "labels": labels or [],
        "dockerVersion": WORKER_VERSION,
    }
