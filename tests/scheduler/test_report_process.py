"""Run reports are drawn in a process of their own under SCHED_IDLE (report/write.py): in the
scheduler's process the drawing held the GIL that its event loop needs for every call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.scheduler.report import write


def test_run_reports_are_drawn_in_a_process_of_their_own_under_sched_idle() -> None:
    assert write._submit(os.getpid).result(60) != os.getpid()
    assert write._submit(os.sched_getscheduler, 0).result(60) == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


# A scheduler stand-in: starts the report process, prints its pid, and waits to be killed.
_PARENT = """
import os, sys, time
from services.scheduler.report import write
print(write._submit(os.getpid).result(60), flush=True)
time.sleep(600)
"""


def test_the_report_process_ends_when_its_scheduler_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(child):
        assert time.monotonic() < deadline, f"report process {child} outlived its killed scheduler"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; its new parent (init) reaps it
