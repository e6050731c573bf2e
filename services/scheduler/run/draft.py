"""The run's report as it stands right before its commit, kept with the run in the store.

What a run learns before its commit (files listed, processed and skipped, the model, the
selection and cache counts, seconds per stage) lives only in the scheduler that runs it.
If that scheduler dies after the commit and before the run's end, the replica that takes
the run over finishes it from the commit (run/resume.py) and would know only what the
pool records: the picks and the pool's sizes. So each attempt saves this draft in the
run's row right before its first Commit call (a write only the lease holder can make: a
replica that lost the run stops there, before committing), and the takeover restores it,
so that its report is as complete as the one the dead replica would have written.
GetRunReport serves a run's report only once the run has ended, never a draft.
"""

from __future__ import annotations

import logging
from typing import Any

from datapool.run_report import PoolPoint, RunReport
from services.scheduler.run.context import RunContext
from services.scheduler.run.finish import settle

log = logging.getLogger(__name__)


def save_draft(ctx: RunContext) -> None:
    ctx.observer.save_draft(settle(ctx))


def restore_draft(ctx: RunContext, draft: dict[str, Any]) -> bool:
    """Fills the run's report, tally and timings from `draft` as the attempt that saved it
    had them; False (and nothing changed) for a draft of another run or one unreadable."""
    if draft.get("run_id") != ctx.spec.run_id:
        return False
    try:
        saved = RunReport.from_json(draft)
        seconds = {str(k): float(v) for k, v in draft["seconds"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        log.warning(
            "run %s: its saved draft report is unreadable (%s); reporting the commit alone",
            ctx.spec.run_id,
            e,
        )
        return False
    report, tally = ctx.report, ctx.tally
    report.started_at = saved.started_at or report.started_at
    report.pool_before = saved.pool_before or PoolPoint()
    files = saved.files
    report.files.listed, report.files.media = files.listed, files.media
    report.files.new, report.files.process_all = files.new, files.process_all
    report.model, report.selection = saved.model, saved.selection
    report.frames, report.embedding_cache = saved.frames, saved.embedding_cache
    tally.processed, tally.skipped = files.processed, files.skipped
    tally.decode_s = seconds.pop("decode_in_embedder", 0.0)
    tally.embed_s = seconds.pop("model_in_embedder", 0.0)
    # "total" goes on from the saving attempt's start, through this attempt's lookup.
    ctx.started -= seconds.pop("total", 0.0)
    ctx.timings.update(seconds)
    return True
