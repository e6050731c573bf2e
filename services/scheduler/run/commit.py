"""Stage 7, commit: the selector writes the pool's next manifest, the only write that changes the pool.

When another run committed first, the selector merges the selections and answers with
the frames the merged selection still needs (`need_frames`): they are rendered and the
commit asked again, up to MAX_COMMIT_ROUNDS times.
"""

from __future__ import annotations

from datetime import UTC, datetime

from datapool.v1 import selector_pb2
from services.scheduler.run.context import RunContext, RunFailed
from services.scheduler.run.interfaces import SelectorError
from services.scheduler.run.render import render

MAX_COMMIT_ROUNDS = 20


def tag_name_for(run_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S")
    return f"run-{stamp}-{run_id[:8]}"


def render_and_commit(ctx: RunContext, selection: selector_pb2.SelectResponse) -> selector_pb2.Committed:
    rendered: dict[str, str] = {}
    picks = list(selection.picks)
    tag = tag_name_for(ctx.spec.run_id)
    ctx.timings["render"] = 0.0
    ctx.timings["commit"] = 0.0
    for _ in range(MAX_COMMIT_ROUNDS):
        render(ctx, picks, rendered)
        request = selector_pb2.CommitRequest(
            session_id=ctx.session_id,
            tag_name=tag,
            frames=[selector_pb2.RenderedFrame(frame_name=n, key=k) for n, k in rendered.items()],
        )
        with ctx.timed("commit"):
            try:
                response = ctx.selector.commit(request)
            except SelectorError as e:
                raise RunFailed(
                    f"commit failed: {e}. The pool holds either nothing of this run "
                    "or its complete commit; run again to continue"
                ) from None
        if response.WhichOneof("outcome") == "committed":
            return response.committed
        picks = list(response.need_frames.picks)
    raise RunFailed(f"the pool kept changing: no commit after {MAX_COMMIT_ROUNDS} rounds; run again")
