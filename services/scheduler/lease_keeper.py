"""The heartbeat of a scheduler replica: renews the leases of its runs and takes over runs whose
replica died, restarting them from their last safe point (the pool's newest commit).

Restarting is safe because a pool commit is all-or-nothing and records the files it processed:
a takeover after the commit finds nothing new, one before it redoes the run, its embeddings
coming from the pool's cache.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

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

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # Not joined: shutdown calls this holding the run manager's lock, which a beat may wait
        # for. The thread closes the heartbeat's connections as it ends.
        self._stop.set()

    def beat(self) -> None:
        for run_id in self.leases.renew(self._active()):
            log.warning("run %s: lease lost to another scheduler replica; it stops here", run_id)
            self._lost(run_id)
        for row in self.leases.claim_expired(self._states, self._free_slots()):
            log.warning("run %s: its scheduler stopped holding its lease; taking it over", row.id)
            self._take_over(row)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except Exception:
                # A database blip must not end the heartbeat: the next beat retries, and a
                # lease outlives two missed beats.
                log.exception("lease heartbeat failed")
        self.leases.close()
