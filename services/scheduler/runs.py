"""Run lifecycle: accept, execute in the background, record state, wake watchers.

States move OPEN → EMBEDDING → SELECTING → COMMITTING → COMPLETED | FAILED and
are written to the database before watchers are told, so a watcher that
reconnects never misses an end state.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from datapool.config import RunConfig
from datapool.errors import DatapoolError
from datapool.run_report import RunReport
from datapool.storage.locations import pool_key
from datapool.v1 import scheduler_pb2
from services.common.secrets import SCRUBBER, Scrubber
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import LeaseLost, MetadataDB, RunRow
from services.scheduler.lease_keeper import LeaseKeeper
from services.scheduler.metrics import RUN_STATES
from services.scheduler.pipeline import RunPipeline, RunSpec
from services.scheduler.run.interfaces import RemoteError
from services.scheduler.run_queue import RunQueue, queued_message
from services.scheduler.takeover import spec_of, takeover_message

log = logging.getLogger(__name__)

END_STATES = (scheduler_pb2.COMPLETED, scheduler_pb2.FAILED)
ACTIVE_STATES = (
    scheduler_pb2.OPEN,
    scheduler_pb2.EMBEDDING,
    scheduler_pb2.SELECTING,
    scheduler_pb2.COMMITTING,
    scheduler_pb2.QUEUED,
)
INTERRUPTED = (
    "interrupted: the scheduler stopped during this run. The pool holds either nothing "
    "of it or its complete commit; schedule the run again to continue"
)


class _DbObserver:
    def __init__(self, manager: RunManager, run_id: str) -> None:
        self.manager = manager
        self.run_id = run_id
        self._progress: dict[str, int] = {}

    def set_state(self, state: int, message: str) -> None:
        self.manager.update(self.run_id, state=state, message=message)

    def set_progress(self, **counts: int) -> None:
        self._progress.update(counts)
        self.manager.update(self.run_id, progress=dict(self._progress))

    def save_draft(self, report: RunReport) -> None:
        # In the report column, which GetRunReport serves only once the run has ended.
        draft = json.loads(self.manager.scrubber.scrub(json.dumps(report.to_json())))
        self.manager.update(self.run_id, report=draft)


class RunManager:
    def __init__(
        self,
        db: MetadataDB,
        pipeline: RunPipeline,
        max_concurrent_runs: int = 4,
        datasources: DatasourceCatalog | None = None,
        scrubber: Scrubber = SCRUBBER,
        lease_s: float = 30.0,
    ) -> None:
        self.db = db
        self.datasources = datasources if datasources is not None else DatasourceCatalog(db, None)
        self.scrubber = scrubber
        self.pipeline = pipeline
        self._changed = threading.Condition()
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent_runs, thread_name_prefix="run")
        # Runs accepted and not ended; on shutdown they end FAILED ("interrupted") and their
        # threads may write nothing more (the database closes next).
        self._lock = threading.Lock()
        # Guards the two sets alone and is never held across a database write, so the lease
        # heartbeat reading them never waits behind a slow write on a loaded machine (which let
        # leases lapse on a live replica). Taken after `_lock` where both are held.
        self._sets = threading.Lock()
        self._active: set[str] = set()
        self._interrupted: set[str] = set()
        self._max_runs = max_concurrent_runs
        self._queue = RunQueue(max_concurrent_runs, self._announce_queued)
        # Several replicas may share the store: each run is leased to the one running it, and
        # a run whose replica stops renewing its lease is taken over by another (lease_keeper.py).
        self._keeper = LeaseKeeper(
            db, lease_s, self._running, self._free_slots, self._take_over, self._lose, ACTIVE_STATES
        )
        self.owner = self._keeper.owner
        self._lease_ms = int(lease_s * 1000)
        self._fail_interrupted_runs()
        self._keeper.start()

    def _running(self) -> set[str]:
        with self._sets:
            return self._active - self._interrupted

    def _free_slots(self) -> int:
        with self._sets:
            return self._max_runs - len(self._active)

    def _lose(self, run_id: str) -> None:
        with self._sets:
            self._interrupted.add(run_id)

    def _take_over(self, row: RunRow) -> None:
        with self._sets:
            self._active.add(row.id)
        try:
            spec = spec_of(self.db, self.datasources, row)
            self.update(row.id, state=scheduler_pb2.OPEN, message=takeover_message(row), progress={})
        except DatapoolError as e:
            self._end(
                row.id, scheduler_pb2.FAILED, f"could not restart after its scheduler stopped: {e}", None
            )
            with self._sets:
                self._active.discard(row.id)
            return
        self._submit(spec)

    def _submit(self, spec: RunSpec) -> None:
        self._queue.admit(spec.run_id)
        self._executor.submit(self._execute, spec)

    def _announce_queued(self, run_id: str, position: int) -> None:
        try:
            message = queued_message(position, self._max_runs)
            self.update(run_id, state=scheduler_pb2.QUEUED, message=message)
        except LeaseLost:
            self._queue.forget(run_id)

    def _fail_interrupted_runs(self) -> None:
        """Runs a stopped scheduler left in an active state end FAILED: on SQLite (one scheduler)
        all of them, on Postgres those without a lease (from before leases); leased ones are
        taken over by a replica when their lease expires."""
        for row in self.db.runs_in_states(ACTIVE_STATES):
            if row.owner is None or not self.db.is_postgres:
                self._mark_interrupted(row.id, None)

    def _mark_interrupted(self, run_id: str, owner: str | None) -> None:
        report = RunReport(run_id, state="FAILED", error=INTERRUPTED).to_json()
        try:
            self.db.update_run(
                run_id, state=scheduler_pb2.FAILED, message=INTERRUPTED, report=report, owner=owner
            )
        except LeaseLost:
            return  # another replica runs it now
        RUN_STATES.entered(run_id, scheduler_pb2.FAILED)

    def schedule(self, dataset_id: str, dataset_type: int, config: RunConfig) -> RunRow:
        input_loc = self.datasources.require(dataset_id, scheduler_pb2.INPUT)
        pool_loc = self.datasources.require(dataset_id, scheduler_pb2.LIGHTLY)
        row = self.db.create_run(
            dataset_id, scheduler_pb2.OPEN, config.to_json(), owner=self.owner, lease_ms=self._lease_ms
        )
        RUN_STATES.entered(row.id, scheduler_pb2.OPEN)
        spec = RunSpec(
            run_id=row.id, dataset_type=dataset_type, input=input_loc, pool=pool_loc, config=config
        )
        with self._sets:
            self._active.add(row.id)
        log.info("run %s scheduled on dataset %s", row.id, dataset_id)
        self._submit(spec)
        return self.db.get_run(row.id)

    def _execute(self, spec: RunSpec) -> None:
        try:
            if self._queue.start(spec.run_id):
                self.update(spec.run_id, state=scheduler_pb2.OPEN, message="started: a slot freed")
            self._run(spec)
        except LeaseLost:
            log.warning("run %s: another scheduler replica took it over; this one stops", spec.run_id)
        finally:
            self._queue.done()
            with self._sets:
                self._active.discard(spec.run_id)

    def _run(self, spec: RunSpec) -> None:
        observer = _DbObserver(self, spec.run_id)
        log.info("run %s started", spec.run_id)
        try:
            report = self.pipeline.execute(spec, observer)
        except DatapoolError as e:
            self._end(spec.run_id, scheduler_pb2.FAILED, str(e), None)
            return
        except RemoteError as e:
            message = f"a service the scheduler depends on failed: {e}; the pool is unchanged"
            self._end(spec.run_id, scheduler_pb2.FAILED, message, None)
            return
        except LeaseLost:
            raise  # another replica runs it now: _execute says so, this is no crash
        except Exception as e:
            if spec.run_id in self._interrupted:
                return  # the channels closed under it at shutdown; it already ended "interrupted"
            log.exception("run %s crashed", spec.run_id)
            self._end(spec.run_id, scheduler_pb2.FAILED, f"internal error: {type(e).__name__}: {e}", None)
            return
        self._record_commit(spec, report)
        self._end(spec.run_id, scheduler_pb2.COMPLETED, _completed_message(report), report)

    def _record_commit(self, spec: RunSpec, report: RunReport) -> None:
        """The pool version the run's commit made, in the store before the run shows COMPLETED: a
        ListTags after that never answers from a summary older than the commit (async_tags.py)."""
        if not report.tag or report.pool_after is None:
            return
        try:
            self.db.record_pool_version(pool_key(spec.pool), report.pool_after.version)
        except Exception:  # the commit stands; ListTags catches up when its cached answer expires
            log.exception("run %s: its pool version could not be recorded", spec.run_id)

    def _end(self, run_id: str, state: int, message: str, report: RunReport | None) -> None:
        if run_id in self._interrupted:
            return
        row = self.db.get_run(run_id)
        # The last line of defence: whatever a storage SDK put into an error, no
        # credential reaches the database, a client or the report.
        message = self.scrubber.scrub(message)
        tags: list[str] = []
        version = row.pool_version
        if report is None:
            name = scheduler_pb2.RunState.Name(cast("scheduler_pb2.RunState.ValueType", state))
            report = RunReport(run_id, state=name, error=message)
        else:
            report.state = "COMPLETED"
            tags = [report.tag] if report.tag else []
            if report.pool_after is not None:
                version = report.pool_after.version
        # An operator following the log sees each run's end and why (the message is scrubbed above).
        log.info("run %s ended %s: %s", run_id, report.state, message)
        stored = json.loads(self.scrubber.scrub(json.dumps(report.to_json())))
        self.update(run_id, state=state, message=message, report=stored, tag_names=tags, pool_version=version)

    def update(self, run_id: str, **fields: Any) -> RunRow | None:
        """Writes the run's fields and wakes watchers; None for a run ended by shutdown."""
        with self._lock:
            if run_id in self._interrupted:
                return None
            row = self.db.update_run(run_id, owner=self.owner, **fields)
            if "state" in fields:
                RUN_STATES.entered(run_id, fields["state"])
        with self._changed:
            self._changed.notify_all()
        return row

    def wait_for_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def shutdown(self) -> None:
        """Ends every run still in progress FAILED ("interrupted") before the scheduler's
        channels and database close under their threads."""
        with self._lock, self._sets:
            self._keeper.stop()
            for run_id in sorted(self._active - self._interrupted):
                self._mark_interrupted(run_id, self.owner)
            self._interrupted |= self._active
        with self._changed:
            self._changed.notify_all()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _completed_message(report: RunReport) -> str:
    pooled = report.pool_after.frames if report.pool_after is not None else 0
    if report.tag:
        added = f"added {report.frames.selected} frame(s) to the pool in tag {report.tag}"
        message = f"{added}; pool has {pooled} frame(s)"
    elif report.files.new == 0:
        message = f"no new files: {report.files.note}; pool has {pooled} frame(s)"
    else:
        message = f"no frames added; pool has {pooled} frame(s)"
    if report.files.skipped:
        message += f"; {len(report.files.skipped)} file(s) skipped (see the run report)"
    return message
