"""A per-token rate limit on ScheduleRun: a flood of runs is refused with RESOURCE_EXHAUSTED
(naming the limit and when to retry) before it costs a database row or a thread.

A token bucket per caller, keyed by a hash of the bearer token the call carried (never the
token itself); in memory, so each scheduler replica limits the calls it answers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable

from datapool.errors import ResourceExhausted

_HEADER = "authorization"
# Buckets of callers idle this long are dropped, so a stream of one-off tokens cannot grow the map.
_IDLE_S = 3600.0


def caller_key(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's bucket, from a call's invocation metadata (its bearer token, hashed)."""
    for key, value in metadata or ():
        if key == _HEADER:
            raw = value if isinstance(value, bytes) else value.encode()
            return hashlib.sha256(raw).hexdigest()[:16]
    return "anonymous"


class RateLimiter:
    """`per_minute` calls a minute per caller, `burst` at once; per_minute 0 turns it off."""

    def __init__(self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.burst = max(1, burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)

    def take(self, caller: str) -> None:
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        with self._lock:
            now = self._clock()
            if len(self._buckets) > 10_000:
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < _IDLE_S}
            tokens, at = self._buckets.get(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                retry = (1.0 - tokens) / rate
                raise ResourceExhausted(
                    f"ScheduleRun is limited to {self.per_minute:g} run(s) a minute per token "
                    f"(bursts of {self.burst}; --schedule-rate-per-minute, --schedule-burst): "
                    f"retry in {retry:.1f} s"
                )
            self._buckets[caller] = (tokens - 1.0, now)
