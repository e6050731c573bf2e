"""Runs beyond --max-concurrent-runs wait in state QUEUED, their position in the run message.

The executor already runs them in arrival order; this keeps the order visible: a run's position
is rewritten each time one ahead of it starts.
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
        self._running = 0
        self._waiting: list[str] = []

    def admit(self, run_id: str) -> bool:
        """Counts a run in; False when it has to wait (it is then announced as queued)."""
        with self._lock:
            if self._running + len(self._waiting) < self.slots:
                self._running += 1
                return True
            self._waiting.append(run_id)
            position = len(self._waiting)
        self._announce(run_id, position)
        return False

    def start(self, run_id: str) -> bool:
        """A run's thread begins; True if it had waited. Moves every run behind it up one place."""
        with self._lock:
            if run_id not in self._waiting:
                return False
            self._waiting.remove(run_id)
            self._running += 1
            behind = list(self._waiting)
        for i, other in enumerate(behind, start=1):
            self._announce(other, i)
        return True

    def done(self) -> None:
        with self._lock:
            self._running -= 1

    def forget(self, run_id: str) -> None:
        """A run that ended before it started (shutdown, lost lease)."""
        with self._lock:
            if run_id in self._waiting:
                self._waiting.remove(run_id)
