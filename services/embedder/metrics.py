"""The embedder's metrics: frames decoded and embedded, how busy it is, the backends it runs.

`datapool_embedder_busy_ratio` is what the chart's HorizontalPodAutoscaler scales the
embedders on (values.yaml: embedder.autoscaling.metric); keep the name in step with it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from prometheus_client import Counter, Gauge

# The busy ratio is a share of this trailing window: long enough to smooth out the gap
# between two files, short enough for the autoscaler to react within a minute or two.
BUSY_WINDOW_S = 60.0

FRAMES_DECODED = Counter(
    "datapool_embedder_frames_decoded", "Frames decoded from input files (every frame, sampled or not)."
)
FRAMES_EMBEDDED = Counter(
    "datapool_embedder_frames_embedded", "Frames run through the model, by model backend.", ["backend"]
)
QUEUE_DEPTH = Gauge(
    "datapool_embedder_queue_depth", "EmbedFile calls on this replica now, decoding, embedding or waiting."
)
BUSY_RATIO = Gauge(
    "datapool_embedder_busy_ratio",
    f"Share of the last {BUSY_WINDOW_S:.0f} s with at least one EmbedFile call in progress (0..1).",
)
BACKEND_INFO = Gauge(
    "datapool_embedder_backend_info",
    "1 for each model backend loaded on this replica; default=true for the one requests naming none get.",
    ["backend", "model", "default"],
)


class BusyTracker:
    """Counts calls in progress and the time at least one was, over a trailing window."""

    def __init__(self, window_s: float = BUSY_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._created = clock()
        self._in_flight = 0
        self._busy_since: float | None = None
        # Ended busy periods that may still overlap the window, oldest first.
        self._periods: deque[tuple[float, float]] = deque()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        with self._lock:
            if self._in_flight == 0:
                self._busy_since = self._clock()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                if self._in_flight == 0 and self._busy_since is not None:
                    self._periods.append((self._busy_since, self._clock()))
                    self._busy_since = None

    def ratio(self) -> float:
        """Busy share of the window (of the time since start, while that is shorter)."""
        with self._lock:
            now = self._clock()
            start = max(now - self.window_s, self._created)
            while self._periods and self._periods[0][1] <= start:
                self._periods.popleft()
            busy = sum(end - max(begin, start) for begin, end in self._periods)
            if self._busy_since is not None:
                busy += now - max(self._busy_since, start)
            span = now - start
            return min(1.0, busy / span) if span > 0 else float(self._in_flight > 0)


BUSY = BusyTracker()
BUSY_RATIO.set_function(BUSY.ratio)
QUEUE_DEPTH.set_function(lambda: BUSY.in_flight)


def backend_loaded(name: str, model: str, default: bool) -> None:
    BACKEND_INFO.labels(name, model, "true" if default else "false").set(1)
