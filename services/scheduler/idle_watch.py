"""A hung embedder is found by silence, not by the whole file's deadline: a stream that sends
nothing for `idle_s` while the scheduler waits for it is cancelled, and its file moves on.

Only time spent waiting for the next message counts, so a slow consumer (the selection applying
backpressure) never makes a healthy replica look hung.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Cancellable(Protocol):
    def cancel(self) -> bool: ...


class IdleWatch:
    def __init__(self, call: Cancellable, idle_s: float) -> None:
        self.call = call
        self.idle_s = idle_s
        self.hung = False
        self._waiting_since: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="embed-idle-watch", daemon=True)

    def messages(self, stream: Iterator[T]) -> Iterator[T]:
        """`stream`'s messages, each awaited under the watch."""
        self._thread.start()
        try:
            while True:
                self._waiting_since = time.monotonic()
                try:
                    message = next(stream)
                except StopIteration:
                    return
                finally:
                    self._waiting_since = None
                yield message
        finally:
            self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self.idle_s / 4)):
            since = self._waiting_since
            if since is not None and time.monotonic() - since > self.idle_s:
                self.hung = True
                self.call.cancel()
                return
