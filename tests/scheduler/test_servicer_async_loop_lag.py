"""The asyncio server's probes (services/common/loop_lag.py): a callback that holds the event loop
shows as the loop's lag, and a garbage collection as a pause of its generation."""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import REGISTRY
from run_apart import run_apart

from services.common.loop_lag import time_gc_pauses, watch_loop_lag


def _count(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_a_callback_that_holds_the_loop_shows_as_its_lag() -> None:
    over = {"le": "0.25"}
    before_all = _count("datapool_event_loop_lag_seconds_count")
    before_fast = _count("datapool_event_loop_lag_seconds_bucket", over)

    async def scenario() -> None:
        probe = asyncio.ensure_future(watch_loop_lag(0.01))
        await asyncio.sleep(0.05)
        time.sleep(0.4)  # holds the loop, as a blocking call on it would
        await asyncio.sleep(0.05)
        probe.cancel()

    run_apart(scenario)
    timers = _count("datapool_event_loop_lag_seconds_count") - before_all
    fast = _count("datapool_event_loop_lag_seconds_bucket", over) - before_fast
    assert timers >= 3
    assert timers - fast >= 1  # the timer due while the loop was held woke more than 250 ms late


def test_a_full_collection_is_timed_as_a_generation_2_pause() -> None:
    time_gc_pauses()
    time_gc_pauses()  # once per process, however often asked
    labels = {"generation": "2"}
    before = _count("datapool_gc_pause_seconds_count", labels)
    gc.collect()
    assert _count("datapool_gc_pause_seconds_count", labels) >= before + 1
