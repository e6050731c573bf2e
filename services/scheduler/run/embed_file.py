"""One file's embedding, moved to another replica when one fails.

A broken file is skipped only when an embedder says so (`skipped`); an embedder that fails
FILE_ATTEMPTS times fails the run, naming it: that is not the file's fault. Vectors of
another model than the run's (a replica started with --gpu-resize, say) must not meet the
run's in one selection or cache entry, so such an attempt counts as a failed one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from datapool.run_report import ProcessedFile, SkippedFile
from datapool.v1 import common_pb2, selector_pb2
from services.scheduler.file_names import printable
from services.scheduler.progress import FrameProgress
from services.scheduler.run.context import RunContext, RunFailed
from services.scheduler.run.interfaces import BackendRefused, Embedder, EmbedderError
from services.scheduler.run.model_check import backend_refused

log = logging.getLogger(__name__)

FILE_ATTEMPTS = 3

# Hands one message to the run's Select stream.
Send = Callable[[selector_pb2.SelectRequest], None]


def embed_file(ctx: RunContext, file: common_pb2.FileRef, send: Send, progress: FrameProgress) -> None:
    """Embeds `file`, streaming its vectors to the selection; raises RunFailed when it cannot."""
    tried: set[str] = set()
    last_error = ""
    for _ in range(FILE_ATTEMPTS):
        replica = ctx.replica(tried, last_error)
        tried.add(replica.address)
        attempt = _Attempt(ctx, replica, file, send, progress)
        try:
            if attempt.run():
                return
            last_error = attempt.error
        except BackendRefused as e:
            raise backend_refused(ctx.spec.config.worker.model_backend, e, f"{replica.address}: ") from None
        except EmbedderError as e:
            last_error = f"{replica.address}: {e}"
            log.warning("embedding %s failed on %s; retrying", file.path, last_error)
        # The selection forgets this attempt's vectors; the next attempt sends them again.
        send(selector_pb2.SelectRequest(file_dropped=selector_pb2.FileDropped(file=file)))
        progress.add(-attempt.frames)
    raise RunFailed(
        f"the embedders failed {FILE_ATTEMPTS} times on {printable(file.path)}; last: {last_error}. "
        "The pool is unchanged; check the embedders' logs and run again"
    )


class _Attempt:
    """One try on one replica: True from `run` when the file is done (embedded or skipped)."""

    def __init__(
        self,
        ctx: RunContext,
        replica: Embedder,
        file: common_pb2.FileRef,
        send: Send,
        progress: FrameProgress,
    ) -> None:
        self.ctx, self.replica, self.file, self.send, self.progress = ctx, replica, file, send, progress
        self.frames = 0
        self.error = ""

    def run(self) -> bool:
        ctx, file = self.ctx, self.file
        worker = ctx.spec.config.worker
        media_kind = ""
        model = ctx.model.info.name
        events = self.replica.embed_file(ctx.spec.input, file, worker.frame_sampling, worker.model_backend)
        for event in events:
            kind = event.WhichOneof("event")
            if kind == "batch":
                self.frames += len(event.batch.frame_indices)
                self.send(
                    selector_pb2.SelectRequest(
                        batch=selector_pb2.CandidateBatch(file=file, vectors=event.batch)
                    )
                )
                self.progress.add(len(event.batch.frame_indices))
            elif kind == "info":
                media_kind = event.info.kind
            elif kind == "done" and event.done.model != model:
                self.error = (
                    f"{self.replica.address} embedded with model {event.done.model!r}, "
                    f"not the run's model {model!r}"
                )
                log.warning("embedding %s: %s; retrying elsewhere", file.path, self.error)
                return False
            elif kind == "done":
                done = event.done
                self.send(
                    selector_pb2.SelectRequest(
                        file_complete=selector_pb2.FileComplete(
                            file=file, frame_count=done.frame_count, kind=media_kind
                        )
                    )
                )
                with ctx.tally.lock:
                    ctx.tally.processed.append(
                        ProcessedFile(
                            path=file.path,
                            size=file.size,
                            frames=done.frame_count,
                            frames_embedded=self.frames,
                            from_cache=False,
                        )
                    )
                    ctx.report.frames.embedded += self.frames
                    ctx.report.frames.decoded += done.frame_count
                    ctx.tally.decode_s += done.decode_seconds
                    ctx.tally.embed_s += done.embed_seconds
                return True
            elif kind == "skipped":
                self.send(selector_pb2.SelectRequest(file_dropped=selector_pb2.FileDropped(file=file)))
                self.progress.add(-self.frames)
                with ctx.tally.lock:
                    ctx.tally.skipped.append(SkippedFile(path=file.path, reason=event.skipped.reason))
                return True
        self.error = f"{self.replica.address}: the embedder ended the stream without a result"
        return False
