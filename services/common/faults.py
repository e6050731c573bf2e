"""Fault points that tests arm to kill or hold a process at an exact step.

A fault point does nothing unless DATAPOOL_FAULT_DIR is set. A test arms the
point NAME by creating the file $DATAPOOL_FAULT_DIR/NAME; the first process to
reach the point removes the file (so a restarted process runs on) and kills
itself with SIGKILL, as an OOM killer or a node failure would.

A test can also *hold* NAME (file NAME.hold): every process reaching the point
leaves a NAME.held-<pid> marker and waits until the hold is released. Holding two
writers at the same step and releasing them together makes a race certain
instead of likely.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "DATAPOOL_FAULT_DIR"
HOLD_TIMEOUT_S = 120.0


def fault_point(name: str) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    _wait_while_held(Path(folder), name)
    marker = Path(folder) / name
    try:
        marker.unlink()
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _wait_while_held(folder: Path, name: str) -> None:
    hold = folder / f"{name}.hold"
    if not hold.exists():
        return
    (folder / f"{name}.held-{os.getpid()}").touch()
    deadline = time.monotonic() + HOLD_TIMEOUT_S
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def arm(folder: str | os.PathLike[str], name: str) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / name).touch()


def hold(folder: str | os.PathLike[str], name: str) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{name}.hold").touch()


def held(folder: str | os.PathLike[str], name: str) -> int:
    """How many processes have reached the held point so far."""
    return len(list(Path(folder).glob(f"{name}.held-*")))


def release(folder: str | os.PathLike[str], name: str) -> None:
    (Path(folder) / f"{name}.hold").unlink(missing_ok=True)
