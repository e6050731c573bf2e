"""Selection sessions: what Select learned, kept in memory until Commit or expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from datapool.errors import AlreadyExists, InvalidArgument, NotFound
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolState
from services.selector.candidates import CandidateSet
from services.selector.model import FileRef, Pick

SESSION_TTL_SECONDS = 3600.0


@dataclass(frozen=True)
class SelectionSpec:
    session_id: str
    run_id: str
    n_samples: int
    proportion_samples: float
    min_distance: float
    model: str
    # The run's FrameSampling cache key; "" writes nothing to the embedding cache.
    sampling_key: str = ""
    # Files the session's LoadCachedEmbeddings answered as hits; the Select refuses to
    # open without exactly that many staged.
    cached_files: int = 0
    # The pool version the run diffed its input against; None selects against the newest.
    base_version: int | None = None
    # The run's output_image_format ("png", "jpg"): frame names end in its suffix.
    image_format: str = "png"


@dataclass(frozen=True)
class Committed:
    version: int
    picks: list[Pick]
    tag_name: str
    attempts: int
    # Frames in the pool at `version`; after a lost race more than the session's base held.
    pool_frame_count: int = field(default=0, compare=False)


@dataclass(frozen=True)
class NeedFrames:
    """The pool moved on; these redone picks have no rendered frame yet."""

    picks: list[Pick]
    base_version: int


CommitOutcome = Committed | NeedFrames


@dataclass
class SelectionSession:
    spec: SelectionSpec
    repository: PoolRepository
    # The pool the current picks were made against; Commit moves it forward on a lost race.
    pool: PoolState
    candidates: CandidateSet
    processed: list[FileRef]
    n_samples: int
    picks: list[Pick]
    select_seconds: float
    # Candidates not already pooled when Select ran.
    candidate_count: int
    frames: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    committed: Committed | None = None
    # The commit id whose data writes failed: the commit was given up and its frames
    # deleted, so this session can commit nothing any more.
    failed_commit: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_version(self) -> int:
        return self.pool.version

    def picks_without_frames(self) -> list[Pick]:
        return [p for p in self.picks if p.frame_name not in self.frames]


class SessionRegistry:
    """Sessions by id; one idle longer than the TTL is dropped on the next access."""

    def __init__(self, ttl_seconds: float = SESSION_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # None marks an id whose Select stream is still running.
        self._sessions: dict[str, SelectionSession | None] = {}
        self._last_used: dict[str, float] = {}

    def reserve(self, session_id: str) -> None:
        if not session_id:
            raise InvalidArgument("spec.session_id is empty")
        with self._lock:
            self._expire()
            if session_id in self._sessions:
                raise AlreadyExists(f"session {session_id!r} already exists")
            self._sessions[session_id] = None
            self._last_used[session_id] = self._clock()

    def install(self, session: SelectionSession) -> None:
        with self._lock:
            self._sessions[session.spec.session_id] = session
            self._last_used[session.spec.session_id] = self._clock()

    def get(self, session_id: str) -> SelectionSession:
        with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                raise NotFound(f"session {session_id!r} not found (never selected, closed or expired)")
            self._last_used[session_id] = self._clock()
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
            self._last_used.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl
        # A running Select stream is not idle, however long the embedders take.
        idle = [s for s, used in self._last_used.items() if used < cutoff and self._sessions[s] is not None]
        for session_id in idle:
            del self._sessions[session_id]
            del self._last_used[session_id]
