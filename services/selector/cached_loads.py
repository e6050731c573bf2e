"""Cache hits loaded ahead of a Select, kept until the Select with their session id opens.

The scheduler must learn which files to embed before it streams any, and a Select stream
has no way to answer mid-stream, so hits are looked up and loaded by a call of their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.selector.cache_entry import CacheEntry, CacheScope
from services.selector.session import SESSION_TTL_SECONDS


@dataclass(frozen=True)
class StagedLoad:
    scope: CacheScope
    entries: list[CacheEntry]


class StagedCacheLoads:
    """Loads by session id; one never picked up within the TTL is dropped on the next access."""

    def __init__(self, ttl_seconds: float = SESSION_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._loads: dict[str, tuple[float, StagedLoad]] = {}

    def put(self, session_id: str, load: StagedLoad) -> None:
        with self._lock:
            self._expire()
            self._loads[session_id] = (self._clock(), load)

    def take(self, session_id: str) -> StagedLoad | None:
        with self._lock:
            self._expire()
            staged = self._loads.pop(session_id, None)
            return staged[1] if staged else None

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._loads.pop(session_id, None)

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl
        for session_id in [s for s, (at, _) in self._loads.items() if at < cutoff]:
            del self._loads[session_id]
