"""How late an asyncio server's event loop runs, and how long the garbage collector stops it.

Every call of the scheduler's asyncio server waits for its turn on one event loop, so anything
that holds the loop (a slow handler, a store read that waits, a full garbage collection, another
thread holding the GIL) delays every call queued behind it: a read's tail latency is the loop's
lag. A timer that asks to wake every `interval` seconds and records how late it woke measures
that lag directly, whatever caused it; the collector's pauses, timed through `gc.callbacks`,
name one cause apart. Both are Prometheus histograms (bench/load/scenarios.py reads prints them).
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client import Histogram

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LOOP_LAG = Histogram(
    "datapool_event_loop_lag_seconds",
    "How late the server's event loop ran a timer set every 50 ms: the wait every call queued on "
    "the loop then had on top of its own work.",
    buckets=LAG_BUCKETS,
)
GC_PAUSE = Histogram(
    "datapool_gc_pause_seconds",
    "Seconds each garbage collection stopped the process (every thread: it holds the GIL), by generation.",
    ["generation"],
    buckets=LAG_BUCKETS,
)
INTERVAL_S = 0.05

_gc_started: list[float] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started.append(time.perf_counter())
    elif _gc_started:
        GC_PAUSE.labels(str(info.get("generation", "?"))).observe(time.perf_counter() - _gc_started.pop())


def time_gc_pauses() -> None:
    """Times every garbage collection of this process from now on (once per process)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


async def watch_loop_lag(interval: float = INTERVAL_S) -> None:
    """Records the running loop's lag every `interval` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval
        await asyncio.sleep(interval)
        LOOP_LAG.observe(max(0.0, loop.time() - asked))
