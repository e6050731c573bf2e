"""A run taken over from a replica that stopped holding its lease: its spec, rebuilt from the store."""

from __future__ import annotations

from datapool.config import parse_run_config
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB, RunRow
from services.scheduler.pipeline import RunSpec


def takeover_message(row: RunRow) -> str:
    return (
        f"restarted (attempt {row.attempt}): the scheduler replica running it stopped; the pool holds "
        "nothing of it or its complete commit, and this run continues from there"
    )


def spec_of(db: MetadataDB, datasources: DatasourceCatalog, row: RunRow) -> RunSpec:
    """The run as it was scheduled: its config as stored, its dataset's datasources as they are now."""
    dataset = db.get_dataset(dataset_id=row.dataset_id)
    config = parse_run_config(row.config.get("worker_config"), row.config.get("selection_config"))
    return RunSpec(
        run_id=row.id,
        dataset_type=dataset.type,
        input=datasources.require(row.dataset_id, scheduler_pb2.INPUT),
        pool=datasources.require(row.dataset_id, scheduler_pb2.LIGHTLY),
        config=config,
        attempt=row.attempt,
        # A running run's row holds no report but the draft its attempt saved before committing.
        draft=row.report,
    )
