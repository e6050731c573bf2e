"""The scheduler's metrics: runs by state.

`datapool_runs_total{state}` counts the runs that entered each state on this scheduler;
`datapool_runs_active{state}` holds how many are in each active state now.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge

from datapool.v1 import scheduler_pb2

# As services.scheduler.runs.ACTIVE_STATES (a test checks they agree).
ACTIVE_STATES = ("QUEUED", "OPEN", "EMBEDDING", "SELECTING", "COMMITTING")
END_STATES = ("COMPLETED", "FAILED")

RUNS = Counter("datapool_runs", "Runs that entered each state on this scheduler.", ["state"])
RUNS_ACTIVE = Gauge("datapool_runs_active", "Runs in each active state on this scheduler now.", ["state"])

# Every series exists from the start, at 0, so dashboards and rate() see the first run.
for _state in (*ACTIVE_STATES, *END_STATES):
    RUNS.labels(_state)
for _state in ACTIVE_STATES:
    RUNS_ACTIVE.labels(_state)


class RunStates:
    """The last state of each run this scheduler moves, to count each change once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, str] = {}

    def entered(self, run_id: str, state: int) -> None:
        name = scheduler_pb2.RunState.Name(state)  # type: ignore[arg-type]
        with self._lock:
            previous = self._current.get(run_id)
            if previous == name:
                return  # a new message in the same state
            if previous is not None:
                RUNS_ACTIVE.labels(previous).dec()
            if name in ACTIVE_STATES:
                RUNS_ACTIVE.labels(name).inc()
                self._current[run_id] = name
            else:
                self._current.pop(run_id, None)
            RUNS.labels(name).inc()


RUN_STATES = RunStates()
