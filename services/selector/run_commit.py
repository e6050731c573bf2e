"""A run's own commit, found by its run id in the newest pool version.

Every commit's segment records the run that made it, with or without frames (a commit
that added no frames has no tag, so the tags cannot find it). The selector refuses a
run's second commit by the same record (`commit.refuse_second_commit`), so at most one
segment names a run. A scheduler replica that takes a run over, or whose Commit reply was
lost, ends the run from this commit: its version, its frames in pick order, and the pool's
frame counts before and after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from datapool.pool.layout import PoolSegment
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolFrame


@dataclass(frozen=True)
class RunCommit:
    segment: PoolSegment
    # The segment's entries: the run's picks, in the order they were picked.
    frames: list[PoolFrame]
    # The pool's frames at the version the commit was made on, and at the one it created.
    base_frames: int
    pool_frames: int


def run_commit(repo: PoolRepository, run_id: str) -> RunCommit | None:
    """The commit run `run_id` made, or None when no segment of the newest manifest names it."""
    manifest = repo.newest_manifest()
    segment = manifest.run_segment(run_id) if manifest is not None else None
    if manifest is None or segment is None:
        return None
    base = sum(s.frame_count for s in manifest.segments if s.version < segment.version)
    frames = repo.load_frames(segment) if segment.frame_count else []
    return RunCommit(segment, frames, base, base + segment.frame_count)
