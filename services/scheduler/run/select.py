"""Stage 5, select: one Select stream carries the cached files' session, then every new
file's vectors as the embedding stage produces them; the selector answers with the picks.

A feeder thread runs the embedding stage into a bounded queue, so the embedders slow down
when the selector cannot keep up; the Select call on the run's thread drains it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

from datapool.run_report import SelectionCounts
from datapool.v1 import common_pb2, selector_pb2
from services.scheduler.run.context import RunContext, RunFailed
from services.scheduler.run.embed import embed_all
from services.scheduler.run.interfaces import SelectorError

log = logging.getLogger(__name__)

QUEUE_DEPTH = 64


class _Feeder(threading.Thread):
    """Runs the embedding stage into the queue; `error` is why it stopped early, if it did."""

    def __init__(self, ctx: RunContext, files: list[common_pb2.FileRef]) -> None:
        super().__init__(name=f"feed-{ctx.spec.run_id[:8]}", daemon=True)
        self.ctx = ctx
        self.files = files
        self.requests: queue.Queue[selector_pb2.SelectRequest | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.cancel = threading.Event()
        self.error: BaseException | None = None

    def send(self, msg: selector_pb2.SelectRequest) -> None:
        while not self.cancel.is_set():
            try:
                self.requests.put(msg, timeout=0.2)
                return
            except queue.Full:
                continue
        raise RunFailed("cancelled")

    def run(self) -> None:
        try:
            embed_all(self.ctx, self.files, self.send)
        except Exception as e:  # reported through the Select call's end
            log.warning("embedding stage stopped: %s", e)
            self.error = e
        finally:
            # The end marker must not block: if the Select call already failed,
            # nobody drains the queue any more.
            while not self.cancel.is_set():
                try:
                    self.requests.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def stream(self, first: selector_pb2.SelectRequest) -> Iterator[selector_pb2.SelectRequest]:
        yield first
        while (item := self.requests.get()) is not None:
            yield item


def embed_and_select(ctx: RunContext, files: list[common_pb2.FileRef]) -> selector_pb2.SelectResponse:
    """Embeds `files` into the session's selection and returns the selector's picks."""
    sel = ctx.spec.config.selection
    first = selector_pb2.SelectRequest(
        spec=selector_pb2.SelectionSpec(
            session_id=ctx.session_id,
            pool=ctx.spec.pool,
            run_id=ctx.spec.run_id,
            n_samples=sel.n_samples if sel.n_samples is not None else -1,
            proportion_samples=sel.proportion_samples if sel.proportion_samples is not None else -1.0,
            min_distance=sel.min_distance,
            model=ctx.model.info.name,
            sampling_key=ctx.model.sampling_key,
            cached_files=ctx.report.embedding_cache.files_from_cache,
            # The version the listing diffed against: a commit since is caught up at Commit.
            base_version=ctx.base_version,
            # Frame names end in the suffix of the files the render stage writes.
            image_format=ctx.spec.config.worker.output_image_format,
        )
    )
    feeder = _Feeder(ctx, files)
    feeder.start()
    try:
        t = time.monotonic()
        response = ctx.selector.select(feeder.stream(first))
        ctx.timings["select"] = time.monotonic() - t - ctx.timings.get("embed", 0.0)
    except SelectorError as e:
        raise RunFailed(f"selection failed: {e}") from None
    finally:
        feeder.cancel.set()
        feeder.join()
    if isinstance(feeder.error, RunFailed):
        raise feeder.error  # its message already says what failed
    if feeder.error is not None:
        raise RunFailed(f"embedding failed: {feeder.error}")
    ctx.report.embedding_cache.entries_written = response.cache_entries_written
    ctx.report.embedding_cache.write_failures = response.cache_write_failures
    ctx.report.selection = SelectionCounts(
        candidates=response.candidate_count,
        n_samples=sel.n_samples,
        proportion_samples=sel.proportion_samples,
        min_distance=sel.min_distance,
        picked=len(response.picks),
    )
    return response
