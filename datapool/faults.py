"""Fault points that tests arm to kill a process at an exact step.

A fault point does nothing unless DATAPOOL_FAULT_DIR is set. A test arms the
point NAME by creating the file $DATAPOOL_FAULT_DIR/NAME; the first process to
reach the point removes the file (so a restarted process runs on) and kills
itself with SIGKILL, as an OOM killer or a node failure would.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "DATAPOOL_FAULT_DIR"


def fault_point(name: str) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    marker = Path(folder) / name
    try:
        marker.unlink()
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def arm(folder: str | os.PathLike[str], name: str) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / name).touch()
