"""A run's last safe point: its own commit, found in the pool by its run id.

A run's attempts share its id, and each pool commit's segment records the run that made
it, with or without frames (a commit that added no frames has no tag). A replica that
takes a run over looks for that commit before anything else: if the replica before it
died after the commit and before the run's end state, the run ends COMPLETED from the
commit as it is, instead of running again and committing a second time (the selector
would refuse that commit, and with `process_all` an unguarded second run would add a
second tag of frames). Files embedded before the takeover are the other safe point: their
vectors are in the pool's embedding cache, and the cache lookup stage serves them.

The same lookup ends any attempt whose Commit failed while the run's commit is in the
pool: the selector refused a second commit because another attempt of the run committed
first (a replica that lost the lease while still running it), or the reply of this
attempt's own commit was lost (run/commit.py). The report then lists the picks as the
commit recorded them, not a failure. A run ended from an earlier attempt's commit takes its
files, counts and seconds from the draft report that attempt saved before committing
(run/draft.py), so its report is as complete as a normal run's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from datapool.run_report import PoolPoint, RunReport
from datapool.v1 import selector_pb2
from services.scheduler.run.context import RunContext, RunFailed
from services.scheduler.run.draft import restore_draft
from services.scheduler.run.finish import finish
from services.scheduler.run.interfaces import SelectorError


@dataclass(frozen=True)
class EarlierCommit:
    committed: selector_pb2.Committed
    # The pool the commit was made on: its version and frames.
    base: PoolPoint
    # Why the run's commit is finished from the pool rather than from a Commit reply.
    how: str
    # Found before this attempt did any of the run's work: its report comes from the draft the
    # attempt that committed saved (run/draft.py).
    at_takeover: bool = False


def find_commit(ctx: RunContext, how: str) -> EarlierCommit | None:
    """The run's commit in the pool, or None; raises SelectorError when the selector fails."""
    found = ctx.selector.run_commit(ctx.spec.pool, ctx.spec.run_id)
    if not found.found:
        return None
    committed = selector_pb2.Committed(
        version=found.version,
        picks=found.picks,
        tag_name=found.tag_name,
        attempts=0,
        pool_frame_count=found.pool_frame_count,
    )
    return EarlierCommit(committed, PoolPoint(found.version - 1, found.base_frame_count), how)


def earlier_commit(ctx: RunContext) -> EarlierCommit | None:
    """The commit an earlier attempt of this run made, or None (always None for attempt 1)."""
    if ctx.spec.attempt <= 1:
        return None
    try:
        found = find_commit(
            ctx, "an earlier attempt of this run made it on a scheduler replica that then lost the run"
        )
    except SelectorError as e:
        raise RunFailed(
            f"cannot look up whether an earlier attempt of this run committed: the selector failed: {e}. "
            "The pool holds either nothing of this run or its complete commit; run again to continue"
        ) from None
    return None if found is None else dataclasses.replace(found, at_takeover=True)


def finish_from_earlier_commit(ctx: RunContext, earlier: EarlierCommit) -> RunReport:
    committed = earlier.committed
    tag = f"tag {committed.tag_name}" if committed.tag_name else "no tag"
    counts = ""
    if earlier.at_takeover:
        draft = ctx.spec.draft
        counts = (
            "; the files, counts and seconds are those the committing attempt saved before its commit"
            if draft is not None and restore_draft(ctx, draft)
            else "; the committing attempt saved no files or counts: the report holds the commit alone"
        )
    ctx.report.files.note = (
        f"the run committed pool version {committed.version} ({tag}, {len(committed.picks)} frame(s)); "
        f"{earlier.how}; attempt {ctx.spec.attempt} found the commit in the pool and did not commit again"
        + counts
    )
    if ctx.report.pool_before is None:
        ctx.report.pool_before = earlier.base
    return finish(ctx, committed)
