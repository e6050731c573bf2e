"""Select's work at a lower CPU priority than the selector's other calls.

A Select streams a run's vectors in, measures them against the pool and runs the greedy loop:
seconds to minutes of CPU. GetPool (the scheduler's ListTags) and ListProcessedFiles answer in
milliseconds, and on a host whose cores the selection fills they waited behind it
(bench/load/scenarios.py reads, 4 runs). Every Select now runs on a thread lowered by `--selection-nice`
(SCHED_IDLE by default, or a raised nice value), and the core's rayon worker threads are started from such a
thread, so they inherit it (Linux threads inherit the nice value of the thread that starts
them). The read calls keep the gRPC server's threads at the process's own priority, and take
a core from the selection as soon as they are runnable.

A nice value, once raised, cannot be lowered again without CAP_SYS_NICE, which is why the
work moves to threads that stay lowered rather than lowering and restoring a server thread.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import selector_rs
from datapool.cpu_priority import IDLE, Priority, check_priority, lower

log = logging.getLogger(__name__)

T = TypeVar("T")

# Below the scheduler and the selector's read calls, level with the embedders (datapool up's
# --embedder-nice default): on one host both are run work that the reads must not wait for.
DEFAULT_SELECTION_NICE: Priority = IDLE


def thread_nice(native_id: int | None = None) -> int:
    """The nice value of one thread of this process (default: the calling one)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id() if native_id is None else native_id)


class SelectionThreads:
    """Runs callables on threads lowered to `nice`: SCHED_IDLE, or that many nice steps below the
    process's priority (datapool/cpu_priority.py).

    `max_workers` bounds the Selects that run at once; the gRPC server's own worker count is the
    natural bound, since each Select holds one of its threads while it waits here."""

    def __init__(self, nice: Priority, max_workers: int) -> None:
        self.nice = check_priority(nice, "--selection-nice")
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="selection", initializer=self._lower
        )
        # The core's worker threads start now, from a lowered thread, unless this process
        # started them already (then they keep the priority they started with).
        self.worker_threads = self.run(selector_rs.worker_threads)
        log.info("selection runs at %s: %d core worker threads", _named(self.nice), self.worker_threads)

    def _lower(self) -> None:
        lower(0, self.nice)

    def run(self, work: Callable[[], T]) -> T:
        """`work()` on a lowered thread, in the caller's context (contextvars: the call's trace
        context goes with it); its result or its exception, here."""
        return self._executor.submit(contextvars.copy_context().run, work).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _named(priority: Priority) -> str:
    return "SCHED_IDLE" if priority == IDLE else f"nice +{priority}"
