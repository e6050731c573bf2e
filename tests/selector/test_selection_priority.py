"""Select runs below the selector's read calls: `--selection-nice` (SCHED_IDLE by default, or a nice
increment) lowers the threads that run it and the core's worker threads, and leaves the gRPC
server's threads (GetPool, ListProcessedFiles) at the process's priority."""

from __future__ import annotations

import contextvars
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selector_helpers import REPO_ROOT, selector_process

from datapool.errors import InvalidArgument
from datapool.v1 import selector_pb2
from services.selector.selection_priority import SelectionThreads, thread_nice
from services.selector.servicer import SelectorServicer


def _thread_stats(pid: int, field: int) -> dict[int, int]:
    """Each thread of `pid`: field `field` of its /proc stat (19: nice, 41: scheduling policy)."""
    values = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # from field 3 on, after the name
        values[int(tid)] = int(fields[field - 3])
    return values


def _thread_nices(pid: int) -> dict[int, int]:
    return _thread_stats(pid, 19)


def test_work_runs_lowered_and_the_calling_thread_keeps_its_priority() -> None:
    own = thread_nice()
    threads = SelectionThreads(nice=3, max_workers=2)
    try:
        assert threads.run(thread_nice) == min(own + 3, 19)
        assert thread_nice() == own
        with pytest.raises(ZeroDivisionError):
            threads.run(lambda: 1 // 0)
    finally:
        threads.shutdown()


def test_work_runs_in_the_callers_context() -> None:
    # The call's contextvars (OpenTelemetry's trace context among them) go with the work.
    current = contextvars.ContextVar("current", default="none")
    threads = SelectionThreads(nice=1, max_workers=1)
    try:
        current.set("the call's")
        assert threads.run(current.get) == "the call's"
    finally:
        threads.shutdown()


def test_idle_work_runs_under_sched_idle_and_the_calling_thread_keeps_its_policy() -> None:
    threads = SelectionThreads(nice="idle", max_workers=1)
    try:
        assert threads.run(lambda: os.sched_getscheduler(0)) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        threads.shutdown()


def test_a_nice_value_out_of_range_is_refused_naming_the_flag() -> None:
    message = "--selection-nice must be 'idle' or a nice increment 0..19, got 20"
    with pytest.raises(ValueError, match=re.escape(message)):
        SelectionThreads(nice=20, max_workers=1)


def test_the_core_worker_threads_start_lowered_in_a_fresh_process() -> None:
    # In a fresh process the core's rayon threads start from a lowered selection thread, and a
    # selection afterwards starts no thread at the normal priority.
    code = (
        "import os, numpy as np, selector_rs\n"
        "from services.selector.selection_priority import SelectionThreads, thread_nice\n"
        "t = SelectionThreads(nice=5, max_workers=2)\n"
        "x = np.random.default_rng(0).random((4000, 64), dtype=np.float32)\n"
        "t.run(lambda: selector_rs.select_diverse(x, np.zeros((0, 64), np.float32), 50, 0.0))\n"
        "print(t.worker_threads, thread_nice(), os.getpid(), flush=True)\n"
        "input()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            workers, main_nice, pid = (int(v) for v in child.stdout.readline().split())
            nices = _thread_nices(pid)
            lowered = [tid for tid, n in nices.items() if n == min(main_nice + 5, 19)]
            # The rayon workers plus the selection thread that started them.
            assert workers >= 1 and len(lowered) >= workers + 1, nices
            assert nices[pid] == main_nice
        finally:
            child.kill()


def test_a_select_reads_its_stream_on_a_lowered_thread_and_its_error_reaches_the_caller() -> None:
    seen: list[int] = []

    def requests() -> Iterator[selector_pb2.SelectRequest]:
        seen.append(thread_nice())
        yield selector_pb2.SelectRequest()  # no spec: refused

    threads = SelectionThreads(nice=2, max_workers=1)
    try:
        servicer = SelectorServicer(selection_threads=threads)
        with pytest.raises(InvalidArgument, match="the first SelectRequest must carry `spec`"):
            servicer.Select(requests(), None)  # type: ignore[arg-type]
        assert seen == [min(thread_nice() + 2, 19)]
    finally:
        threads.shutdown()


def test_the_selector_process_starts_its_selection_threads_lowered_and_serves_at_its_own_priority(
    tmp_path: Path,
) -> None:
    with selector_process(tmp_path, extra_args=["--selection-nice", "4"]) as selector:
        nices = _thread_nices(selector.process.pid)
        base = nices[selector.process.pid]
        assert sum(1 for n in nices.values() if n == min(base + 4, 19)) >= 2, nices
        # The main thread, gRPC's own threads and the server's (the health check that found it up).
        assert sum(1 for n in nices.values() if n == base) >= 2, nices


def test_by_default_the_selector_runs_its_selection_threads_idle_and_serves_at_its_own_policy(
    tmp_path: Path,
) -> None:
    with selector_process(tmp_path) as selector:
        policies = _thread_stats(selector.process.pid, 41)
        # The selection thread and the core's workers it started.
        assert sum(1 for p in policies.values() if p == os.SCHED_IDLE) >= 2, policies
        assert policies[selector.process.pid] == os.SCHED_OTHER
        assert sum(1 for p in policies.values() if p == os.SCHED_OTHER) >= 2, policies


def test_the_selector_refuses_a_selection_nice_out_of_range_naming_the_flag() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.selector", "--selection-nice", "-1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--selection-nice must be 'idle' or a nice increment 0..19, got '-1'" in done.stderr
