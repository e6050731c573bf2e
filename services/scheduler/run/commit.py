"""Stage 7, commit: the selector writes the pool's next manifest, the only write that changes the pool.

When another run committed first, the selector merges the selections and answers with
the frames the merged selection still needs (`need_frames`): they are rendered and the
commit asked again, up to MAX_COMMIT_ROUNDS times.
"""

from __future__ import annotations

from datetime import UTC, datetime

from datapool.v1 import selector_pb2
from services.scheduler.run.context import RunContext, RunFailed
from services.scheduler.run.draft import save_draft
from services.scheduler.run.interfaces import SelectorError
from services.scheduler.run.render import render
from services.scheduler.run.resume import EarlierCommit, find_commit

MAX_COMMIT_ROUNDS = 20


class CommittedBefore(Exception):
    """Another attempt of this run committed it (the selector refuses a second commit)."""

    def __init__(self, earlier: EarlierCommit) -> None:
        super().__init__(f"committed before as tag {earlier.committed.tag_name}")
        self.earlier = earlier


def tag_name_for(run_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S")
    return f"run-{stamp}-{run_id[:8]}"


def render_and_commit(ctx: RunContext, selection: selector_pb2.SelectResponse) -> selector_pb2.Committed:
    rendered: dict[str, str] = {}
    picks = list(selection.picks)
    tag = tag_name_for(ctx.spec.run_id)
    ctx.timings["render"] = 0.0
    ctx.timings["commit"] = 0.0
    for round_ in range(MAX_COMMIT_ROUNDS):
        render(ctx, picks, rendered)
        if round_ == 0:
            # Raises LeaseLost in a replica that lost the run: it stops here, before committing.
            save_draft(ctx)
        request = selector_pb2.CommitRequest(
            session_id=ctx.session_id,
            tag_name=tag,
            frames=[selector_pb2.RenderedFrame(frame_name=n, key=k) for n, k in rendered.items()],
        )
        with ctx.timed("commit"):
            try:
                response = ctx.selector.commit(request)
            except SelectorError as e:
                # The run's commit may be in the pool all the same: another attempt of the run
                # (its replica alive after all) committed first, or this commit's reply was lost.
                if (earlier := _commit_in_pool(ctx, e)) is not None:
                    raise CommittedBefore(earlier) from None
                raise RunFailed(
                    f"commit failed: {e}. The pool holds either nothing of this run "
                    "or its complete commit; run again to continue"
                ) from None
        if response.WhichOneof("outcome") == "committed":
            return response.committed
        picks = list(response.need_frames.picks)
    raise RunFailed(f"the pool kept changing: no commit after {MAX_COMMIT_ROUNDS} rounds; run again")


def _commit_in_pool(ctx: RunContext, error: SelectorError) -> EarlierCommit | None:
    if error.code == "FAILED_PRECONDITION":
        how = "another attempt of the run committed first, and the selector refused this attempt's commit"
    else:
        how = (
            f"this attempt's Commit call failed ({error.code}) after the commit was made: its reply was lost"
        )
    try:
        return find_commit(ctx, how)
    except SelectorError:
        return None  # the selector is out of reach: the run fails as the commit did
