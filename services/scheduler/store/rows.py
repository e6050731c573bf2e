"""What the store hands out: immutable rows, decoded from the tables' columns."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping


def new_id() -> str:
    """24 hex digits (96 random bits): the shape of Lightly's object ids, so the REST gateway
    (services/gateway) passes dataset and run ids through unchanged."""
    return uuid.uuid4().hex[:24]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class DatasetRow:
    id: str
    name: str
    type: int
    created_unix_ms: int


@dataclass(frozen=True)
class RunRow:
    id: str
    dataset_id: str
    state: int
    message: str
    config: dict[str, Any]
    progress: dict[str, int]
    report: dict[str, Any] | None
    tag_names: list[str]
    pool_version: int
    created_unix_ms: int
    updated_unix_ms: int
    # The scheduler replica holding the run's lease (None: from before leases, or never claimed).
    owner: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class RunSummary:
    """A run as its message shows it: a RunRow without `config` and `report`, which read calls
    (GetRun, WatchRun, ListRuns) never show, so they are neither read nor decoded (a report
    grows with the run's files)."""

    id: str
    dataset_id: str
    state: int
    message: str
    progress: dict[str, int]
    tag_names: list[str]
    pool_version: int
    created_unix_ms: int
    updated_unix_ms: int


class LeaseLost(Exception):
    """This replica no longer owns the run (its lease expired and another replica took it over):
    it must write nothing more about it."""


def dataset_row(r: RowMapping) -> DatasetRow:
    return DatasetRow(id=r["id"], name=r["name"], type=r["type"], created_unix_ms=r["created_unix_ms"])


def run_row(r: RowMapping) -> RunRow:
    return RunRow(
        id=r["id"],
        dataset_id=r["dataset_id"],
        state=r["state"],
        message=r["message"],
        config=json.loads(r["config"]),
        progress=json.loads(r["progress"]),
        report=None if r["report"] is None else json.loads(r["report"]),
        tag_names=json.loads(r["tag_names"]),
        pool_version=r["pool_version"],
        created_unix_ms=r["created_unix_ms"],
        updated_unix_ms=r["updated_unix_ms"],
        owner=r["owner"],
        attempt=r["attempt"],
    )


def run_summary(r: Sequence[Any]) -> RunSummary:
    """From a row of `RunSummary`'s columns in its order (`db.RUN_SUMMARY_COLUMNS`)."""
    return RunSummary(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6], r[7], r[8])


def run_columns(row: RunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "dataset_id": row.dataset_id,
        "state": row.state,
        "message": row.message,
        "config": json.dumps(row.config),
        "progress": json.dumps(row.progress),
        "report": None if row.report is None else json.dumps(row.report),
        "tag_names": json.dumps(row.tag_names),
        "pool_version": row.pool_version,
        "created_unix_ms": row.created_unix_ms,
        "updated_unix_ms": row.updated_unix_ms,
        "owner": row.owner,
        "attempt": row.attempt,
    }
