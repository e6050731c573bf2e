"""Frame progress while files are still being embedded.

A one-hour video is 108,000 frames: counting frames only when a file completes leaves
the progress bar still for minutes. The embedding stage adds each batch's frames here
and takes back those of an attempt that failed; watchers see the count at most every
`interval_s` seconds, so a fast run does not write a database row per batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

PROGRESS_INTERVAL_S = 0.5


class ProgressSink(Protocol):
    def set_progress(self, **counts: int) -> None: ...


class FrameProgress:
    def __init__(
        self,
        sink: ProgressSink,
        start: int = 0,
        interval_s: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last = float("-inf")
        self.frames = start

    def add(self, frames: int) -> None:
        """`frames` more embedded (a batch), or fewer (a failed attempt's, taken back)."""
        with self._lock:
            self.frames += frames
            now = self._clock()
            if now - self._last < self._interval_s:
                return
            self._last = now
            self._sink.set_progress(frames_embedded=self.frames)

    def report(self, **counts: int) -> None:
        """Reports the frame count now, with other counts (files done, skipped)."""
        with self._lock:
            self._last = self._clock()
            self._sink.set_progress(frames_embedded=self.frames, **counts)
