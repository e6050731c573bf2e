"""Ctrl-C stops a long selection promptly, and the GIL is free while one runs.

Each interrupt test starts work that would run for well over 10 s on two cores (uniform
random rows: nothing for the bounds to prune) and sends SIGINT to the process from a
timer thread after 0.5 s. The binding polls Python's signal handlers every 50 ms while
the GIL is released, so KeyboardInterrupt must reach the caller within a second.

test_select_diverse.py checks that select_diverse releases the GIL; here the same for
IncrementalSelector.add and IncrementalSelector.select.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pytest

import selector_rs

F32 = npt.NDArray[np.float32]

DIM = 128
ROWS = 200_000
DELAY = 0.5
# KeyboardInterrupt must reach the caller within this long of the signal.
LATENCY = 1.0


def uniform(rows: int, seed: int) -> F32:
    return np.random.default_rng(seed).standard_normal((rows, DIM), dtype=np.float32)


def no_pool() -> F32:
    return np.empty((0, 0), dtype=np.float32)


@pytest.fixture(scope="module")
def cands() -> F32:
    return uniform(ROWS, 1)


@pytest.fixture(scope="module")
def pool() -> F32:
    # Measuring 200k candidates against 2k pool rows is ~4e8 distances: far over 10 s.
    return uniform(2_000, 2)


@pytest.fixture(autouse=True)
def default_sigint() -> Iterator[None]:
    """Python's own SIGINT handler (KeyboardInterrupt), whatever the test runner set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted_after(call: Callable[[], object]) -> float:
    """Runs ``call`` with SIGINT sent ``DELAY`` s in; returns how long after the signal
    KeyboardInterrupt reached this thread."""
    sent: dict[str, float] = {}
    started = time.perf_counter()

    def send() -> None:
        sent["at"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(DELAY, send)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
        caught = time.perf_counter()
    finally:
        timer.cancel()
        timer.join()
    assert "at" in sent, f"the call ended after {time.perf_counter() - started:.2f} s, before the signal"
    return caught - sent["at"]


def test_select_diverse_while_measuring_against_the_pool(cands: F32, pool: F32) -> None:
    latency = interrupted_after(lambda: selector_rs.select_diverse(cands, pool, 10, 0.0))
    assert latency < LATENCY, f"KeyboardInterrupt {latency:.3f} s after SIGINT"


def test_select_diverse_in_the_greedy_loop(cands: F32) -> None:
    # No pool: the loop starts at once, and every pick measures ~all 200k rows.
    latency = interrupted_after(lambda: selector_rs.select_diverse(cands, no_pool(), ROWS, 0.0))
    assert latency < LATENCY, f"KeyboardInterrupt {latency:.3f} s after SIGINT"


def test_incremental_add(cands: F32, pool: F32) -> None:
    sel = selector_rs.IncrementalSelector(pool)
    latency = interrupted_after(lambda: sel.add(cands))
    assert latency < LATENCY, f"KeyboardInterrupt {latency:.3f} s after SIGINT"
    # The interrupted block was not added, and the selector still works.
    assert (sel.blocks, sel.rows) == (0, 0)
    assert sel.add(cands[:100]) == 0
    assert len(sel.select(5, 0.0)[0]) == 5


def test_incremental_select(cands: F32) -> None:
    sel = selector_rs.IncrementalSelector(no_pool())
    sel.add(cands[: ROWS // 2])
    sel.add(cands[ROWS // 2 :])
    latency = interrupted_after(lambda: sel.select(ROWS, 0.0))
    assert latency < LATENCY, f"KeyboardInterrupt {latency:.3f} s after SIGINT"
    # Interrupting leaves nothing half-done behind.
    idx, _ = sel.select(3, 0.0)
    assert idx.tolist() == [int(i) for i in selector_rs.select_diverse(cands, no_pool(), 3, 0.0)]


def test_incremental_select_stops_when_stop_says_so_from_any_thread(cands: F32) -> None:
    sel = selector_rs.IncrementalSelector(no_pool())
    sel.add(cands)
    asked = threading.Event()
    threading.Timer(DELAY, asked.set).start()
    outcome: dict[str, object] = {}

    def run() -> None:
        # Not the main thread: signal handlers never run here, only `stop` can end it.
        try:
            sel.select(ROWS, 0.0, stop=asked.is_set)
        except selector_rs.Cancelled as e:
            outcome["at"] = time.perf_counter()
            outcome["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    assert asked.wait(timeout=5)
    set_at = time.perf_counter()
    worker.join(timeout=10)
    assert not worker.is_alive(), "select went on after stop() returned True"
    assert isinstance(outcome.get("error"), selector_rs.Cancelled)
    at = outcome["at"]
    assert isinstance(at, float) and at - set_at < LATENCY
    # The selector still works.
    assert len(sel.select(3, 0.0, stop=lambda: False)[0]) == 3


def test_an_exception_from_stop_propagates(cands: F32) -> None:
    sel = selector_rs.IncrementalSelector(no_pool())
    sel.add(cands[:50_000])

    def stop() -> bool:
        raise LookupError("from stop")

    with pytest.raises(LookupError, match="from stop"):
        sel.select(50_000, 0.0, stop=stop)


def ticks_during(call: Callable[[], object]) -> tuple[int, float]:
    """Runs ``call`` here while another thread counts loop iterations (each needs the GIL);
    returns the iterations counted strictly inside the call, and the call's duration."""
    stamps: list[float] = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.02)
        start = time.perf_counter()
        call()
        end = time.perf_counter()
    finally:
        stop.set()
        counter.join()
    margin = 0.01
    return sum(start + margin < t < end - margin for t in stamps), end - start


def test_add_and_select_release_the_gil() -> None:
    rows = uniform(40_000, 3)
    sel = selector_rs.IncrementalSelector(uniform(500, 4))
    inside, took = ticks_during(lambda: sel.add(rows))
    assert took > 0.05, "add finished too quickly to tell"
    assert inside >= 5, f"{inside} ticks during a {took:.3f} s add"
    inside, took = ticks_during(lambda: sel.select(2_000, 0.0))
    assert took > 0.05, "select finished too quickly to tell"
    assert inside >= 5, f"{inside} ticks during a {took:.3f} s select"
