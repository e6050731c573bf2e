"""Loopback ports for the services `datapool up` starts, and that tests and benches start."""

from __future__ import annotations

import socket
import threading

# Ports this process has handed out. The kernel may give a just-closed port to the next bind, so
# two stacks started at once (tests/commit/test_two_schedulers.py) could both get it before either
# child binds it ("Address already in use"); a port is never handed out twice here.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now and not handed out before by this process."""
    with _handed_out_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
