"""Runs beyond --max-concurrent-runs wait in state QUEUED, their position in the run message.

The executor already runs them in arrival order; this keeps the order visible: a run's position
is rewritten each time one ahead of it starts.

An announcement is a database write, made outside the queue's lock (a slow write must not hold
up admissions). It must never land after the run has left the queue: a "queued" write that
arrived after the run had started and ended put an ended run back into an active state, with no
heartbeat renewing its lease, and another replica ran it a second time. So each announcement
checks that its run still waits and writes while holding `_announcing`, which `start` takes
before it lets a run out of the queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def queued_message(position: int, slots: int) -> str:
    return (
        f"queued: position {position} in line; {slots} run(s) execute at once on this "
        "scheduler (--max-concurrent-runs) and this one starts when a slot frees"
    )


class RunQueue:
    def __init__(self, slots: int, announce: Callable[[str, int], None]) -> None:
        """`announce(run_id, position)` writes a queued run's state and message."""
        self.slots = slots
        self._announce = announce
        self._lock = threading.Lock()
        # Reentrant: `start` holds it while it announces the runs behind the one it lets out.
        self._announcing = threading.RLock()
        self._running = 0
        self._waiting: list[str] = []

    def admit(self, run_id: str) -> bool:
        """Counts a run in; False when it has to wait (it is then announced as queued)."""
        with self._lock:
            if self._running + len(self._waiting) < self.slots:
                self._running += 1
                return True
            self._waiting.append(run_id)
        self._announce_positions([run_id])
        return False

    def start(self, run_id: str) -> bool:
        """A run's thread begins; True if it had waited. Moves every run behind it up one place."""
        with self._announcing:
            with self._lock:
                if run_id not in self._waiting:
                    return False
                self._waiting.remove(run_id)
                self._running += 1
                behind = list(self._waiting)
            self._announce_positions(behind)
        return True

    def done(self) -> None:
        with self._lock:
            self._running -= 1

    def forget(self, run_id: str) -> None:
        """A run that ended before it started (shutdown, lost lease)."""
        with self._lock:
            if run_id in self._waiting:
                self._waiting.remove(run_id)

    def _announce_positions(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            with self._announcing:
                with self._lock:
                    if run_id not in self._waiting:
                        continue  # started or forgotten since: its state is no longer ours to write
                    position = self._waiting.index(run_id) + 1
                self._announce(run_id, position)
