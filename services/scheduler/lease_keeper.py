"""The heartbeat of a scheduler replica: renews the leases of its runs and takes over runs whose
replica died, restarting them from their last safe point (the pool's newest commit).

Restarting is safe because a pool commit is all-or-nothing and records the files it processed:
a takeover after the commit finds that commit (run/resume.py), one before it redoes the run,
the embeddings of files done before coming from the pool's cache.

The heartbeat thread only renews and claims: on a loaded machine everything else a replica
does is slow, and a renewal that waited behind it let the lease lapse on a live replica
(bench/bench_lease_load.py: with a 2 s lease and a busy process, 8 s between renewals, most
runs taken over from the replica still running them, which then took them back). So beats
keep a fixed rate from their starts, and taking a claimed run over (reading its spec, writing
its state, queueing it) and stopping a lost one happen on a thread of their own; a claimed run
is renewed from the claim on, before its takeover is done.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from services.scheduler.db import MetadataDB, RunRow
from services.scheduler.store.run_leases import RunLeases

log = logging.getLogger(__name__)


def replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseKeeper:
    def __init__(
        self,
        db: MetadataDB,
        lease_s: float,
        active: Callable[[], set[str]],
        free_slots: Callable[[], int],
        take_over: Callable[[RunRow], None],
        lost: Callable[[str], None],
        states: tuple[int, ...],
    ) -> None:
        self.owner = replica_id()
        self.leases = RunLeases(db, self.owner, int(lease_s * 1000))
        self._active, self._free_slots = active, free_slots
        self._take_over, self._lost = take_over, lost
        self._states = states
        # Three beats per lease: one late or failed beat never loses a run.
        self._interval = lease_s / 3
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
        # Claimed runs whose takeover has not yet made them active: renewed meanwhile.
        self._claimed: set[str] = set()
        self._claimed_lock = threading.Lock()
        self._changes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease-takeover")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # Not joined: shutdown calls this holding the run manager's lock, which a beat may wait
        # for. The thread closes the heartbeat's connections as it ends.
        self._stop.set()
        self._changes.shutdown(wait=False, cancel_futures=True)

    def beat(self) -> None:
        with self._claimed_lock:
            claimed = set(self._claimed)
        for run_id in self.leases.renew(self._active() | claimed):
            log.warning("run %s: lease lost to another scheduler replica; it stops here", run_id)
            self._hand_over(self._lost, run_id)
        for row in self.leases.claim_expired(self._states, self._free_slots() - len(claimed)):
            log.warning("run %s: its scheduler stopped holding its lease; taking it over", row.id)
            with self._claimed_lock:
                self._claimed.add(row.id)
            self._hand_over(self._taken_over, row)

    def _taken_over(self, row: RunRow) -> None:
        try:
            self._take_over(row)  # makes the run active: renewed from there
        finally:
            with self._claimed_lock:
                self._claimed.discard(row.id)

    def _hand_over(self, change: Callable[[RunRow], None] | Callable[[str], None], arg: object) -> None:
        try:
            future = self._changes.submit(change, arg)  # type: ignore[arg-type]
        except RuntimeError:
            return  # stopping: the runs end "interrupted" or are taken over elsewhere
        future.add_done_callback(self._log_failure)

    def _loop(self) -> None:
        # Beats keep their rate from their starts: a slow beat shortens the wait after it.
        next_beat = time.monotonic() + self._interval
        while not self._stop.wait(max(0.0, next_beat - time.monotonic())):
            next_beat = max(next_beat + self._interval, time.monotonic())
            try:
                self.beat()
            except Exception:
                # A database blip must not end the heartbeat: the next beat retries, and a
                # lease outlives two missed beats.
                log.exception("lease heartbeat failed")
        self.leases.close()

    def _log_failure(self, future: Future[None]) -> None:
        # After stop, the run manager shuts down under a takeover in progress: nothing to report.
        if not future.cancelled() and (e := future.exception()) is not None and not self._stop.is_set():
            log.error("taking a run over or stopping a lost one failed", exc_info=e)
