"""The embedder's busy ratio (the autoscaler's metric) and queue depth."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.embedder.metrics import BusyTracker, backend_loaded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_busy_ratio_is_the_share_of_the_window_with_a_call_in_progress() -> None:
    clock = Clock()
    busy = BusyTracker(window_s=60, clock=clock)
    clock.now += 60
    assert busy.ratio() == 0
    with busy.call():
        clock.now += 15
        # Overlapping calls count once: the replica is busy, not twice busy.
        with busy.call():
            assert busy.in_flight == 2
            clock.now += 15
    assert busy.in_flight == 0
    assert busy.ratio() == 0.5
    clock.now += 30
    assert busy.ratio() == 0.5
    clock.now += 15  # half of the busy period has left the window
    assert busy.ratio() == 0.25
    clock.now += 60
    assert busy.ratio() == 0


def test_a_call_still_in_progress_counts_up_to_now() -> None:
    clock = Clock()
    busy = BusyTracker(window_s=60, clock=clock)
    clock.now += 120
    with busy.call():
        clock.now += 45
        assert busy.ratio() == 0.75


def test_a_replica_younger_than_the_window_is_measured_over_its_life() -> None:
    clock = Clock()
    busy = BusyTracker(window_s=60, clock=clock)
    with busy.call():
        clock.now += 10
    assert busy.ratio() == 1.0


def test_a_call_that_raises_still_ends() -> None:
    busy = BusyTracker()
    try:
        with busy.call():
            raise ValueError
    except ValueError:
        pass
    assert busy.in_flight == 0


def test_each_loaded_backend_is_one_labelled_series() -> None:
    backend_loaded("onnx-test", "efficientnet-lite0@test", default=True)
    labels = {"backend": "onnx-test", "model": "efficientnet-lite0@test", "default": "true"}
    assert REGISTRY.get_sample_value("datapool_embedder_backend_info", labels) == 1
