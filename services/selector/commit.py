"""Commit: make a session's picks the pool's next version, or redo them if the pool moved.

Rule order matters for crash safety: data objects first (fresh names, so a crash leaves
only orphans), then the manifest created only if absent, which is the single step that
makes the commit visible.

Fault points (see `services.common.faults`), in the order a commit reaches them:

- `selector.commit.before_data`: picks final, nothing written yet.
- `selector.commit.after_data.<name>`: after each data object of the commit is written,
  named by the object's file name up to its first dot (`entries`, `embeddings`,
  `processed`, ...), so a test can stop between any two of them.
- `selector.commit.after_data`: every data object written, manifest not yet put.
- `selector.commit.after_manifest`: the manifest put created the next version.
- `selector.commit.lost_race`: the put found the version taken by another writer's commit.
- `selector.commit.after_reread`: the newer manifest was re-read and checked; the picks are
  about to be redone against it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import uuid
from collections.abc import Iterator

from datapool.errors import FailedPrecondition, InvalidArgument
from datapool.pool.gc import discard_commit
from datapool.pool.layout import DATA_PREFIX, INITIAL_TAG, PoolManifest, PoolSegment, run_frames_prefix
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolFrame, empty_vectors
from datapool.storage import ForwardingStore
from services.common import faults
from services.common.faults import fault_point
from services.selector.errors import CommitAborted
from services.selector.metrics import COMMITS, LOST_RACES, RETRIES
from services.selector.selection import select_picks
from services.selector.session import CommitOutcome, Committed, NeedFrames, SelectionSession

MAX_COMMIT_ATTEMPTS = 50

FAULT_POINTS = (
    "selector.commit.before_data",
    "selector.commit.after_data.entries",
    "selector.commit.after_data.embeddings",
    "selector.commit.after_data.processed",
    "selector.commit.after_data",
    "selector.commit.after_manifest",
    "selector.commit.lost_race",
    "selector.commit.after_reread",
)


class PoolCommitter:
    def __init__(self, max_attempts: int = MAX_COMMIT_ATTEMPTS) -> None:
        self.max_attempts = max_attempts

    def commit(self, session: SelectionSession, tag_name: str, frames: dict[str, str]) -> CommitOutcome:
        with session.lock:
            if session.committed is not None:
                # The client's earlier Commit succeeded but its reply was lost.
                return session.committed
            if session.failed_commit:
                raise FailedPrecondition(
                    f"session {session.spec.session_id!r}: its commit failed writing the pool and its "
                    "frames were deleted; run again"
                )
            if tag_name == INITIAL_TAG:
                raise InvalidArgument(f"tag_name {INITIAL_TAG!r} is reserved: it names the whole pool")
            session.frames.update(frames)
            for _ in range(self.max_attempts):
                if session.repository.newest_version() != session.base_version:
                    self._catch_up(session)
                    continue
                refuse_second_commit(session)
                if session.picks_without_frames():
                    return NeedFrames(list(session.picks), session.base_version)
                outcome = self._try_commit(session, tag_name)
                if outcome is not None:
                    session.committed = outcome
                    return outcome
            raise CommitAborted(
                f"session {session.spec.session_id!r}: other writers committed first "
                f"{self.max_attempts} times in a row; retry the run later"
            )

    def _try_commit(self, session: SelectionSession, tag_name: str) -> Committed | None:
        """One manifest put on the current base; None when another writer took the version."""
        repo = session.repository
        base = session.pool.manifest
        tag = tag_name if session.picks else ""
        if session.picks and not tag:
            raise InvalidArgument("tag_name is empty but the run adds frames to the pool")
        if tag and base is not None and any(s.tag == tag for s in base.segments):
            raise FailedPrecondition(f"tag {tag!r} already exists in the pool")
        commit_id = uuid.uuid4().hex
        version = session.base_version + 1
        now_ms = int(time.time() * 1000)
        rows = [p.row for p in session.picks]
        dim = session.pool.dim or session.candidates.dim
        embeddings = session.candidates.vectors[rows] if rows else empty_vectors(dim)
        pooled = [
            PoolFrame(p.frame_name, session.frames[p.frame_name], p.file, p.frame_index, p.distance)
            for p in session.picks
        ]

        fault_point("selector.commit.before_data")
        writer = _with_data_fault_points(repo)
        with given_up_on_failure(session, commit_id, version):
            keys = writer.write_segment_data(commit_id, pooled, embeddings, session.processed)
        fault_point("selector.commit.after_data")

        segment = PoolSegment(commit_id, session.spec.run_id, version, tag, now_ms, len(pooled), keys)
        manifest = PoolManifest(
            version=version,
            commit_id=commit_id,
            run_id=session.spec.run_id,
            created_unix_ms=now_ms,
            model=session.pool.model or session.spec.model,
            dim=dim,
            segments=(*(base.segments if base else ()), segment),
        )
        session.attempts += 1
        if repo.create_manifest(manifest):
            COMMITS.inc()
            fault_point("selector.commit.after_manifest")
        else:
            existing = repo.manifest(version)
            # "Exists" after a retried put may be our own earlier success.
            if existing is None or existing.commit_id != commit_id:
                LOST_RACES.inc()
                fault_point("selector.commit.lost_race")
                discard_commit(repo, commit_id, version)  # the version is taken: never ours
                return None
        pool_frames = len(session.pool.frames) + len(pooled)
        return Committed(version, list(session.picks), tag, session.attempts, pool_frames)

    def _catch_up(self, session: SelectionSession) -> None:
        """Loads only the segments committed since the session's base and redoes the picks."""
        repo = session.repository
        newest = repo.newest_manifest()
        if newest is None or newest.version <= session.base_version:
            raise FailedPrecondition(
                f"pool in {repo.describe()} is at version {newest.version if newest else 0}, "
                f"behind the session's base {session.base_version}"
            )
        spec = session.spec
        if newest.model and newest.model != spec.model:
            raise FailedPrecondition(f"pool model is now {newest.model!r}, the session's is {spec.model!r}")
        if newest.dim and len(session.candidates) and newest.dim != session.candidates.dim:
            raise FailedPrecondition(
                f"pool dim is now {newest.dim}, the session's candidates have dim {session.candidates.dim}"
            )
        RETRIES.inc()
        fault_point("selector.commit.after_reread")
        added = repo.load_segments(newest.segments_after(session.base_version), newest.dim)
        session.pool = session.pool.extended(newest, added)
        session.picks = select_picks(session.candidates, session.pool, session.n_samples, spec.min_distance)


def refuse_second_commit(session: SelectionSession) -> None:
    """A run commits a pool once. Its attempts share its id: when a scheduler replica that lost
    the run's lease (alive, but starved) commits after the replica that took the run over, or
    the other way round, the later commit is refused, whichever comes second. The manifest put
    is create-if-absent on the version checked here, so two commits cannot both pass."""
    run_id, base = session.spec.run_id, session.pool.manifest
    if not run_id or base is None:
        return
    segment = base.run_segment(run_id)
    if segment is not None:
        raise FailedPrecondition(
            f"run {run_id!r} already committed pool version {segment.version} "
            f"(tag {segment.tag!r}); a run commits once, so this attempt of it adds nothing"
        )


@contextlib.contextmanager
def given_up_on_failure(session: SelectionSession, commit_id: str, version: int) -> Iterator[None]:
    """Around the writes of a commit before its manifest put: if they raise, the session's
    commit is given up (a later Commit on it is refused) and what it wrote, the run's
    frames included, is deleted right away instead of waiting for gc."""
    try:
        yield
    except Exception:
        session.failed_commit = commit_id
        run_frames = run_frames_prefix(session.spec.run_id)
        # Only this run's own frames: keys come from the request and must not reach others'.
        frames = [k for k in session.frames.values() if session.spec.run_id and k.startswith(run_frames)]
        discard_commit(session.repository, commit_id, version, frames)
        raise


def _with_data_fault_points(repo: PoolRepository) -> PoolRepository:
    """The repository itself, or, while fault points can be armed, one whose data puts reach them.

    Wrapping the store rather than listing the objects here keeps the fault points in step
    with whatever data objects the repository writes, and leaves production untouched.
    """
    if not os.environ.get(faults.ENV):
        return repo
    writer = copy.copy(repo)
    writer.store = _DataFaultPointStore(repo.store)
    return writer


class _DataFaultPointStore(ForwardingStore):
    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)
        if key.startswith(DATA_PREFIX):
            fault_point(f"selector.commit.after_data.{key.rsplit('/', 1)[-1].split('.', 1)[0]}")
