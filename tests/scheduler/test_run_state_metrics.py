"""Runs by state: each change counted once, the active states' gauge following each run."""

from __future__ import annotations

from prometheus_client import REGISTRY

from datapool.v1 import scheduler_pb2
from services.scheduler import runs
from services.scheduler.metrics import ACTIVE_STATES, RunStates


def entered(state: str) -> float:
    return REGISTRY.get_sample_value("datapool_runs_total", {"state": state}) or 0.0


def active(state: str) -> float:
    return REGISTRY.get_sample_value("datapool_runs_active", {"state": state}) or 0.0


def test_a_run_moves_through_the_active_states_and_leaves_them_at_its_end() -> None:
    states = RunStates()
    before = {s: (entered(s), active(s)) for s in ("OPEN", "EMBEDDING", "SELECTING", "COMPLETED")}
    states.entered("r1", scheduler_pb2.OPEN)
    assert active("OPEN") == before["OPEN"][1] + 1
    states.entered("r1", scheduler_pb2.EMBEDDING)
    states.entered("r1", scheduler_pb2.EMBEDDING)  # a new message, the same state
    assert active("OPEN") == before["OPEN"][1]
    assert active("EMBEDDING") == before["EMBEDDING"][1] + 1
    assert entered("EMBEDDING") == before["EMBEDDING"][0] + 1
    states.entered("r1", scheduler_pb2.SELECTING)
    states.entered("r1", scheduler_pb2.COMPLETED)
    for s in ("OPEN", "EMBEDDING", "SELECTING"):
        assert active(s) == before[s][1], s
        assert entered(s) == before[s][0] + 1, s
    assert entered("COMPLETED") == before["COMPLETED"][0] + 1


def test_the_gauge_covers_exactly_the_schedulers_active_states() -> None:
    names = {scheduler_pb2.RunState.Name(s) for s in runs.ACTIVE_STATES}
    assert set(ACTIVE_STATES) == names


def test_a_queued_run_is_active_until_it_starts() -> None:
    states = RunStates()
    queued = active("QUEUED")
    states.entered("q1", scheduler_pb2.QUEUED)
    assert active("QUEUED") == queued + 1
    states.entered("q1", scheduler_pb2.EMBEDDING)
    assert active("QUEUED") == queued


def test_a_run_failed_by_a_previous_scheduler_is_counted_without_touching_the_gauge() -> None:
    states = RunStates()
    failed = entered("FAILED")
    gauges = [active(s) for s in ACTIVE_STATES]
    states.entered("old-run", scheduler_pb2.FAILED)
    assert entered("FAILED") == failed + 1
    assert [active(s) for s in ACTIVE_STATES] == gauges
