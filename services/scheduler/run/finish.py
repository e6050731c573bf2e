"""Stage 8, finish: the report's counts, picks, tag and timings, whether the run committed or not.

After a lost commit race the pool holds other runs' frames too, so the report names the
pool the commit produced, not the one the run started from.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from datapool.run_report import PoolPoint, RunReport, SelectedFrame
from datapool.v1 import selector_pb2
from services.scheduler.report.write import write_reports
from services.scheduler.run.context import RunContext


def settle(ctx: RunContext) -> RunReport:
    """The report's files, counts and seconds as the stages left them, commit or not: the
    finished report's, and the draft a run saves right before its commit (run/draft.py)."""
    report, tally = ctx.report, ctx.tally
    ctx.timings["total"] = time.monotonic() - ctx.started
    report.files.processed = sorted(tally.processed, key=lambda f: f.path)
    report.files.skipped = sorted(tally.skipped, key=lambda f: f.path)
    # The stages filled the other counts as the run went.
    report.frames.from_cache = report.embedding_cache.frames_from_cache
    report.embedding_cache.files_embedded = sum(1 for f in tally.processed if not f.from_cache)
    report.seconds = {k: round(v, 4) for k, v in ctx.timings.items()}
    report.seconds["decode_in_embedder"] = round(tally.decode_s, 4)
    report.seconds["model_in_embedder"] = round(tally.embed_s, 4)
    return report


def finish(ctx: RunContext, committed: selector_pb2.Committed | None = None) -> RunReport:
    """The run's report; `committed` is None for a run that committed nothing."""
    report = settle(ctx)
    picks = list(committed.picks) if committed is not None else []
    report.frames.selected = len(picks)
    report.selected = [
        SelectedFrame(
            frame_name=p.frame_name, source=p.file.path, frame_index=p.frame_index, distance=p.distance
        )
        for p in picks
    ]
    before = report.pool_before or PoolPoint()
    if committed is not None:
        report.tag = committed.tag_name
        report.pool_after = PoolPoint(version=committed.version, frames=committed.pool_frame_count)
        report.commit_attempts = committed.attempts
    else:
        report.pool_after = before
    report.finished_at = datetime.now(UTC).isoformat()
    write_reports(ctx, report)
    return report
