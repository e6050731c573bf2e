"""Cancels a gRPC call that has heard nothing for too long.

A frozen server (SIGSTOP, a stuck host) keeps its TCP connection open, so a stream from it
neither ends nor fails: keepalive pings notice only a dead connection, and a resubscribe
to the frozen process hangs in the HTTP/2 handshake. The watchdog bounds the silence.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


class IdleWatchdog:
    def __init__(self, call: Cancellable, idle_s: float, last_heard: float) -> None:
        """Cancels `call` once `idle_s` seconds pass after `last_heard` (time.monotonic())
        without a `heard()`."""
        self._call = call
        self._idle_s = idle_s
        self.last_heard = last_heard
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="watch-idle", daemon=True)
        self._thread.start()

    def heard(self) -> None:
        self.last_heard = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while True:
            left = self.last_heard + self._idle_s - time.monotonic()
            if left <= 0:
                self.fired = True
                self._call.cancel()
                return
            if self._stop.wait(left):
                return
