"""The CPU priority of run work on a shared host: "idle" (Linux's SCHED_IDLE) or a nice increment.

On one host the embedders' decoding and inference and the selector's selections share the cores
the scheduler and the selector answer calls on. As SCHED_IDLE threads they run on whatever CPU
time nothing else wants, and a call that wakes a service takes a core from them at once; with a
raised nice value they only get a smaller share, and a waking call could still wait for the rest
of their time slice (bench/load/scenarios.py reads, README "Load"). Each later thread inherits the
policy and nice value of the thread that starts it (Linux). Lowering needs no privilege; raising
back would, so lowered work stays on threads of its own.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

log = logging.getLogger(__name__)

IDLE: Literal["idle"] = "idle"
Priority = int | Literal["idle"]


def check_priority(value: Priority | str, flag: str) -> Priority:
    """`value` as a Priority ("idle" or a nice increment 0..19, as text or not); ValueError naming
    `flag` when it is neither."""
    if value == IDLE:
        return IDLE
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 19:
        raise ValueError(f"{flag} must be 'idle' or a nice increment 0..19, got {value!r}")
    return number


# Where SCHED_IDLE is refused (a seccomp profile that forbids sched_setscheduler), the nice
# increment used instead: the work still yields, as before "idle" existed.
IDLE_FALLBACK_NICE = 10


def lower(tid: int, priority: Priority) -> None:
    """Lowers thread (or just-started process) `tid`, 0 for the calling thread, to `priority`."""
    if priority == IDLE:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError as e:
            log.warning("SCHED_IDLE refused (%s): lowering by nice +%d instead", e, IDLE_FALLBACK_NICE)
            priority = IDLE_FALLBACK_NICE
    if priority:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + priority)
