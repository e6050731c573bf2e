"""Cache hits loaded ahead of a Select, kept until the Select with their session id opens.

The scheduler must learn which files to embed before it streams any, and a Select stream
has no way to answer mid-stream, so hits are looked up and loaded by a call of their own.

Staged vectors wait in memory between two calls, so three things bound them:
- A TTL, checked on every call (begin, each admitted entry, publish, take, drop). No timer
  thread: the byte cap bounds what an unclaimed load holds until the next call frees it,
  and every run makes several calls.
- A cap on the bytes staged by all sessions together. An entry that does not fit is not
  loaded, so its file is answered as a miss and embedded. Refusing is the safe choice:
  evicting another session's load instead would fail that session's run, since its
  Select must find the load it was promised (SelectionSpec.cached_files).
- Closed session ids are remembered (the latest DROPS_REMEMBERED): CloseSession arrives
  when the scheduler has given up on the run, and a load still being read then is
  discarded as it ends instead of staying until its TTL.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from datapool.errors import FailedPrecondition
from datapool.pool.cache_entry import CacheEntry, CacheScope
from services.selector.session import SESSION_TTL_SECONDS

# Vectors staged at once by all sessions. A load over it embeds the rest of its files;
# 8 GiB holds about 1.6 million 1280-wide float32 vectors.
DEFAULT_MAX_STAGED_BYTES = 8 << 30
# Runs end with CloseSession, so this many ids cover far more runs than one TTL holds.
DROPS_REMEMBERED = 10_000


@dataclass
class StagedLoad:
    scope: CacheScope
    entries: list[CacheEntry] = field(default_factory=list)
    nbytes: int = 0


def entry_bytes(entry: CacheEntry) -> int:
    return int(entry.vectors.nbytes + entry.frame_indices.nbytes)


@dataclass
class _Slot:
    load: StagedLoad
    started: float
    published: bool = False


class StagedCacheLoads:
    """Loads by session id: filled entry by entry under the byte cap, then published for take."""

    def __init__(
        self,
        ttl_seconds: float = SESSION_TTL_SECONDS,
        max_bytes: int = DEFAULT_MAX_STAGED_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._dropped: OrderedDict[str, None] = OrderedDict()
        self._bytes = 0

    @property
    def staged_bytes(self) -> int:
        with self._lock:
            self._expire()
            return self._bytes

    def begin(self, session_id: str, scope: CacheScope) -> Staging:
        """Starts the session's load, replacing any earlier one; refused for a closed session."""
        with self._lock:
            self._expire()
            if session_id in self._dropped:
                raise FailedPrecondition(
                    f"session {session_id!r} is closed; its cached embeddings are not loaded"
                )
            self._release(session_id)
            slot = _Slot(StagedLoad(scope), self._clock())
            self._slots[session_id] = slot
            return Staging(self, session_id, slot)

    def take(self, session_id: str) -> StagedLoad | None:
        """The session's published load, handed over once; None if there is none."""
        with self._lock:
            self._expire()
            slot = self._slots.get(session_id)
            if slot is None or not slot.published:
                return None
            self._release(session_id)
            return slot.load

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._release(session_id)
            self._dropped[session_id] = None
            self._dropped.move_to_end(session_id)
            while len(self._dropped) > DROPS_REMEMBERED:
                self._dropped.popitem(last=False)
            self._expire()

    def _admit(self, session_id: str, slot: _Slot, entry: CacheEntry) -> bool:
        size = entry_bytes(entry)
        with self._lock:
            self._expire()
            if self._slots.get(session_id) is not slot or self._bytes + size > self.max_bytes:
                return False
            slot.load.entries.append(entry)
            slot.load.nbytes += size
            self._bytes += size
            return True

    def _publish(self, session_id: str, slot: _Slot) -> bool:
        with self._lock:
            self._expire()
            if self._slots.get(session_id) is not slot:
                return False
            slot.published = True
            return True

    def _abandon(self, session_id: str, slot: _Slot) -> None:
        with self._lock:
            if self._slots.get(session_id) is slot:
                self._release(session_id)

    def _release(self, session_id: str) -> None:
        slot = self._slots.pop(session_id, None)
        if slot is not None:
            self._bytes -= slot.load.nbytes

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl
        for session_id in [s for s, slot in self._slots.items() if slot.started < cutoff]:
            self._release(session_id)


class Staging:
    """One session's load being filled; `publish` hands it to the Select, `abandon` frees it."""

    def __init__(self, owner: StagedCacheLoads, session_id: str, slot: _Slot) -> None:
        self._owner = owner
        self._session_id = session_id
        self._slot = slot

    @property
    def load(self) -> StagedLoad:
        return self._slot.load

    def admit(self, entry: CacheEntry) -> bool:
        """Stages the entry; False when it does not fit under the cap or the load was dropped."""
        return self._owner._admit(self._session_id, self._slot, entry)

    def publish(self) -> None:
        """Raises FailedPrecondition if the session was closed or expired while loading."""
        if not self._owner._publish(self._session_id, self._slot):
            raise FailedPrecondition(
                f"session {self._session_id!r} was closed or expired while its cached embeddings loaded"
            )

    def abandon(self) -> None:
        self._owner._abandon(self._session_id, self._slot)
