"""One run, start to end: the stages in `services.scheduler.run`, called in order.

verify → list and diff → model check → cache lookup → embed and select → render and commit
→ finish; a run taken over from another replica first looks for its own commit (run/resume.py).
The pipeline owns no storage SDK and no stubs: the stages drive the embedder replicas and
the selector through the Protocols in `run.interfaces` (gRPC stays in `remotes`), share one
`RunContext`, and fill one `RunReport`. Every stage's failure
leaves the pool as it was: the only write that changes the pool is the selector's
manifest commit at the very end.
"""

from __future__ import annotations

from datetime import UTC, datetime

from datapool.run_report import RunReport
from datapool.v1 import scheduler_pb2
from services.common.faults import fault_point
from services.scheduler.progress import PROGRESS_INTERVAL_S
from services.scheduler.remotes import REPLICA_WAIT_S
from services.scheduler.run.cache_lookup import load_cached
from services.scheduler.run.commit import CommittedBefore, render_and_commit
from services.scheduler.run.context import RunContext, RunFailed, RunObserver, RunSpec
from services.scheduler.run.embed_file import FILE_ATTEMPTS
from services.scheduler.run.finish import finish
from services.scheduler.run.interfaces import Embedders, Selector
from services.scheduler.run.listing import list_and_diff, nested_pool_prefix
from services.scheduler.run.model_check import cache_sampling_key, check_model
from services.scheduler.run.resume import earlier_commit, finish_from_earlier_commit
from services.scheduler.run.select import embed_and_select
from services.scheduler.run.verify import verify

__all__ = [
    "FILE_ATTEMPTS",
    "RunFailed",
    "RunObserver",
    "RunPipeline",
    "RunSpec",
    "cache_sampling_key",
    "nested_pool_prefix",
]


class RunPipeline:
    def __init__(
        self,
        embedders: Embedders,
        selector: Selector,
        replica_wait_s: float = REPLICA_WAIT_S,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self.embedders = embedders
        self.selector = selector
        self.replica_wait_s = replica_wait_s
        self.progress_interval_s = progress_interval_s

    def execute(self, spec: RunSpec, observer: RunObserver) -> RunReport:
        ctx = RunContext(
            spec=spec,
            observer=observer,
            embedders=self.embedders,
            selector=self.selector,
            replica_wait_s=self.replica_wait_s,
            progress_interval_s=self.progress_interval_s,
            report=RunReport(
                run_id=spec.run_id, started_at=datetime.now(UTC).isoformat(), config=spec.config.to_json()
            ),
        )
        # A taken-over run whose earlier attempt committed ends from that commit (run/resume.py).
        if (earlier := earlier_commit(ctx)) is not None:
            return finish_from_earlier_commit(ctx, earlier)
        verify(ctx)
        listing = list_and_diff(ctx)
        if not listing.new:
            note = ctx.report.files.note = listing.nothing_new_note()
            observer.set_state(scheduler_pb2.EMBEDDING, f"no new files: {note}")
            return finish(ctx)

        check_model(ctx)
        observer.set_state(
            scheduler_pb2.EMBEDDING,
            f"looking up {len(listing.new)} new file(s) of {listing.media} in the embedding cache",
        )
        try:
            to_embed = load_cached(ctx, listing.new)
            # Tests hold a run here to restart the selector between the load and the Select.
            fault_point("scheduler.run.after_cache_load")
            observer.set_state(
                scheduler_pb2.EMBEDDING,
                f"embedding {len(to_embed)} new file(s) of {listing.media} in the input datasource; "
                f"{ctx.report.embedding_cache.files_from_cache} more came from the embedding cache",
            )
            selection = embed_and_select(ctx, to_embed)
            if not ctx.tally.processed:
                observer.set_state(scheduler_pb2.COMMITTING, "no file could be processed; nothing to commit")
                return finish(ctx)
            observer.set_state(
                scheduler_pb2.COMMITTING, f"writing {len(selection.picks)} frame(s) and committing the pool"
            )
            try:
                committed = render_and_commit(ctx, selection)
            except CommittedBefore as e:
                return finish_from_earlier_commit(ctx, e.earlier)
            # Tests kill the scheduler here: committed, the run's end state not yet written.
            fault_point("scheduler.run.after_commit")
        finally:
            self.selector.close_session(ctx.session_id)
        return finish(ctx, committed)
