"""Stage 4, embed: the run's files fan out over the embedder replicas, `streams` at once.

Each file's vectors go to the selection as they come (`send`), so the selector works
while the embedders do. The first file that cannot be embedded fails the run: the files
still queued are not started.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from datapool.v1 import common_pb2, scheduler_pb2
from services.common.faults import fault_point
from services.scheduler.progress import FrameProgress
from services.scheduler.run.context import RunContext
from services.scheduler.run.embed_file import Send, embed_file


def embed_all(ctx: RunContext, files: list[common_pb2.FileRef], send: Send) -> None:
    tally = ctx.tally
    stopped = threading.Event()
    progress = FrameProgress(ctx.observer, interval_s=ctx.progress_interval_s)

    def embed_one(file: common_pb2.FileRef) -> None:
        if stopped.is_set():
            return
        try:
            embed_file(ctx, file, send, progress)
        except Exception:
            stopped.set()  # the run fails: the files still queued need not be embedded
            raise
        with tally.lock:
            tally.files_done += 1
            progress.report(files_done=tally.files_done, files_skipped=len(tally.skipped))
        # Tests hold a run here, a file embedded and others not, to kill its scheduler.
        fault_point("scheduler.run.file_embedded")

    with (
        ctx.timed("embed"),
        ThreadPoolExecutor(max_workers=ctx.embedders.streams, thread_name_prefix="embed") as ex,
    ):
        list(ex.map(embed_one, files))
    frames = ctx.report.frames.embedded + ctx.report.embedding_cache.frames_from_cache
    ctx.observer.set_state(
        scheduler_pb2.SELECTING,
        f"selecting from {frames} frame(s) of {len(tally.processed)} file(s)",
    )
