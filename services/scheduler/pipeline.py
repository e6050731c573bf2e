"""One run, start to end: list and diff, embed, select, render, commit.

The pipeline owns no storage SDK and no stubs: it drives the embedder replicas
and the selector through the adapters in `remotes`, and reports through a
`RunObserver`. Every stage's failure leaves the pool as it was: the only write
that changes the pool is the selector's manifest commit at the very end.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import grpc

from datapool import media_types
from datapool.config import FrameSampling, RunConfig
from datapool.errors import DatapoolError
from datapool.faults import fault_point
from datapool.storage import ObjectInfo, StoreError, open_store
from datapool.storage.nesting import prefix_within
from datapool.v1 import common_pb2, embedder_pb2, scheduler_pb2, selector_pb2
from services.scheduler.datasources import PURPOSE_NAMES, verify_datasource
from services.scheduler.diff import StreamOrderError, new_objects
from services.scheduler.file_names import name_problem, printable
from services.scheduler.progress import PROGRESS_INTERVAL_S, FrameProgress
from services.scheduler.remotes import (
    REPLICA_WAIT_S,
    EmbedderPool,
    EmbedderReplica,
    SelectorClient,
    is_refusal,
    rpc_text,
)

log = logging.getLogger(__name__)

FILE_ATTEMPTS = 3
MAX_COMMIT_ROUNDS = 20
QUEUE_DEPTH = 64
# Files per LoadCachedRequest message.
CACHE_LOOKUP_CHUNK = 10_000


class RunObserver(Protocol):
    def set_state(self, state: int, message: str) -> None: ...

    def set_progress(self, **counts: int) -> None: ...


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    dataset_type: int
    # Locations carry credentials: kept out of the repr, so no log line can show them.
    input: common_pb2.StoreLocation = field(repr=False)
    pool: common_pb2.StoreLocation = field(repr=False)
    config: RunConfig = field(repr=False)


@dataclass
class _Tally:
    """What the embedding stage learned, filled by worker threads under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    processed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    frames_embedded: int = 0
    # Every frame of the embedded files; more than frames_embedded when frame_sampling skips some.
    frames_decoded: int = 0
    decode_s: float = 0.0
    embed_s: float = 0.0
    # The embedding cache: files and vectors loaded from it, entries that existed but were
    # unusable (those files were embedded), and entries the selector wrote for this run.
    files_from_cache: int = 0
    frames_from_cache: int = 0
    cache_unreadable: int = 0
    cache_written: int = 0
    cache_write_failures: int = 0


@dataclass
class _Listing:
    where: str
    kind: str
    listed: int = 0
    media: int = 0
    new: list[common_pb2.FileRef] = field(default_factory=list)
    not_media: list[dict[str, str]] = field(default_factory=list)

    def nothing_new_note(self) -> str:
        if self.listed == 0:
            return f"the INPUT datasource {self.where} is empty"
        if self.media == 0:
            return f"the INPUT datasource {self.where} has no {self.kind} files ({self.listed} other file(s))"
        return f"the pool has processed all {self.media} {self.kind} file(s) in {self.where}"


class RunFailed(DatapoolError):
    """The run cannot go on; the message says why and what to do."""


def cache_sampling_key(sampling: FrameSampling, numbering: str) -> str:
    """The embedding cache scope's sampling key: which frames (`sampling`), and how the
    embedders number and decode them (`ModelInfo.numbering`)."""
    return f"{sampling.cache_key()};{numbering}"


def backend_refused(backend: str, e: grpc.RpcError, where: str = "") -> RunFailed:
    return RunFailed(
        f"worker_config.model_backend={backend!r} cannot be used: {where}{rpc_text(e)}. "
        'Set it to "auto" or to a backend the embedders can run'
    )


def tag_name_for(run_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S")
    return f"run-{stamp}-{run_id[:8]}"


def frame_key(run_id: str, frame_name: str) -> str:
    # Unique per run, so that a crashed or lost commit can never overwrite a
    # frame that a manifest references.
    return f"frames/{run_id}/{frame_name}"


def _file_key(f: common_pb2.FileRef) -> tuple[str, int, str]:
    return (f.path, f.size, f.etag)


class RunPipeline:
    def __init__(
        self,
        embedders: EmbedderPool,
        selector: SelectorClient,
        replica_wait_s: float = REPLICA_WAIT_S,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self.embedders = embedders
        self.selector = selector
        self.replica_wait_s = replica_wait_s
        self.progress_interval_s = progress_interval_s

    def _replica(self, avoid: set[str] | None = None, last_error: str = "") -> EmbedderReplica:
        """A connected embedder replica, waiting up to `replica_wait_s` for one to come back."""
        replica = self.embedders.wait_ready(avoid, self.replica_wait_s)
        if replica is None:
            names = ", ".join(r.address for r in self.embedders.replicas)
            raise RunFailed(
                f"no embedder answered within {self.replica_wait_s:.0f}s (embedders: {names})"
                + (f"; last error: {last_error}" if last_error else "")
                + ". Check that the embedders are running"
            )
        return replica

    def execute(self, spec: RunSpec, observer: RunObserver) -> dict[str, Any]:
        t_start = time.monotonic()
        timings: dict[str, float] = {}
        report: dict[str, Any] = {
            "run_id": spec.run_id,
            "started_at": datetime.now(UTC).isoformat(),
            "config": spec.config.to_json(),
        }

        if not spec.config.worker.datasource.bypass_verify:
            t = time.monotonic()
            self._verify(spec)
            timings["verify"] = time.monotonic() - t

        t = time.monotonic()
        pool_before = self.selector.get_pool(spec.pool)
        listing = self._list_and_diff(spec)
        new_files = listing.new
        timings["list_and_diff"] = time.monotonic() - t
        report["pool_before"] = {"version": pool_before.version, "frames": pool_before.frame_count}
        report["files"] = {
            "listed": listing.listed,
            "media": listing.media,
            "new": len(new_files),
            "process_all": spec.config.process_all,
        }
        observer.set_progress(files_total=len(new_files), files_skipped=len(listing.not_media))

        tally = _Tally(skipped=list(listing.not_media))
        if not new_files:
            report["files"]["note"] = listing.nothing_new_note()
            observer.set_state(scheduler_pb2.EMBEDDING, f"no new files: {report['files']['note']}")
            return self._finish(
                report, tally, timings, t_start, picks=[], committed=None, pool_before=pool_before
            )

        model = self._model_info(spec.config.worker.model_backend)
        report["model"] = {
            "name": model.model,
            "backend": model.backend,
            "backend_reason": model.backend_reason,
            "numbering": model.numbering,
        }
        session_id = uuid.uuid4().hex
        observer.set_state(
            scheduler_pb2.EMBEDDING,
            f"looking up {len(new_files)} new file(s) of {listing.media} in the embedding cache",
        )
        t = time.monotonic()
        try:
            to_embed = self._load_cached(spec, new_files, model, session_id, tally, observer)
            # Tests hold a run here to restart the selector between the load and the Select.
            fault_point("scheduler.run.after_cache_load")
            timings["cache_lookup"] = time.monotonic() - t
            observer.set_state(
                scheduler_pb2.EMBEDDING,
                f"embedding {len(to_embed)} new file(s) of {listing.media} in the input datasource; "
                f"{tally.files_from_cache} more came from the embedding cache",
            )
            selection = self._embed_and_select(spec, to_embed, model, session_id, tally, observer, timings)
            tally.cache_written = selection.cache_entries_written
            tally.cache_write_failures = selection.cache_write_failures
            report["selection"] = {
                "candidates": selection.candidate_count,
                "n_samples": spec.config.selection.n_samples,
                "proportion_samples": spec.config.selection.proportion_samples,
                "min_distance": spec.config.selection.min_distance,
                "picked": len(selection.picks),
            }
            if not tally.processed:
                observer.set_state(scheduler_pb2.COMMITTING, "no file could be processed; nothing to commit")
                return self._finish(report, tally, timings, t_start, [], None, pool_before)
            observer.set_state(
                scheduler_pb2.COMMITTING,
                f"writing {len(selection.picks)} frame(s) and committing the pool",
            )
            committed = self._render_and_commit(spec, selection, session_id, timings)
        finally:
            self.selector.close_session(session_id)
        return self._finish(report, tally, timings, t_start, list(committed.picks), committed, pool_before)

    # stages

    def _model_info(self, backend: str) -> embedder_pb2.ModelInfo:
        """The model and backend that will embed; refuses the run if the embedder cannot run `backend`."""
        try:
            return self._replica().model_info(backend)
        except grpc.RpcError as e:
            if is_refusal(e):
                raise backend_refused(backend, e) from None
            raise

    def _verify(self, spec: RunSpec) -> None:
        """Access may have changed since set_*_config; find out before anything is embedded."""
        for location, purpose in ((spec.input, scheduler_pb2.INPUT), (spec.pool, scheduler_pb2.LIGHTLY)):
            try:
                verify_datasource(location, purpose)
            except DatapoolError as e:
                name = PURPOSE_NAMES[purpose]
                if e.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    # A full disk: no permission to fix and no check worth skipping.
                    raise RunFailed(f"the {name} datasource has no space left: {e}") from None
                raise RunFailed(
                    f"the {name} datasource failed its access check at run start: {e}. Fix the "
                    "permissions, or set worker_config.datasource.bypass_verify to skip this check"
                ) from None

    def _list_and_diff(self, spec: RunSpec) -> _Listing:
        """One streaming pass over the INPUT listing: media vs. the rest, then new vs. processed.

        Memory is bounded by the new files (the run's work list) and the skipped ones,
        never by the whole listing or by the files the pool has processed.
        """
        store = open_store(spec.input)
        videos = spec.dataset_type == scheduler_pb2.VIDEOS
        takes = media_types.is_video if videos else media_types.is_image
        kind = "a video" if videos else "an image"
        exclude = nested_pool_prefix(spec.input, spec.pool)
        result = _Listing(where=store.describe(), kind="video" if videos else "image")

        def media() -> Iterator[ObjectInfo]:
            for obj in store.list():
                if exclude is not None and obj.key.startswith(exclude):
                    continue
                result.listed += 1
                problem = obj.unreadable or name_problem(obj.key)
                if problem:
                    result.not_media.append({"path": printable(obj.key), "reason": problem})
                elif takes(obj.key):
                    result.media += 1
                    yield obj
                else:
                    ext = media_types.extension(obj.key) or "(none)"
                    result.not_media.append({"path": obj.key, "reason": f"not {kind} file (extension {ext})"})

        processed = () if spec.config.process_all else self.selector.processed_files(spec.pool)
        try:
            for obj in new_objects(media(), processed):
                result.new.append(common_pb2.FileRef(path=obj.key, size=obj.size, etag=obj.etag))
        except StoreError as e:
            raise RunFailed(f"cannot list the INPUT datasource: {e}") from None
        except StreamOrderError as e:
            raise RunFailed(f"cannot tell new files from processed ones: {e}") from None
        except grpc.RpcError as e:
            raise RunFailed(f"cannot read the pool's processed files: {rpc_text(e)}") from None
        return result

    def _embed_and_select(
        self,
        spec: RunSpec,
        files: list[common_pb2.FileRef],
        model: embedder_pb2.ModelInfo,
        session_id: str,
        tally: _Tally,
        observer: RunObserver,
        timings: dict[str, float],
    ) -> selector_pb2.SelectResponse:
        sel = spec.config.selection
        first = selector_pb2.SelectRequest(
            spec=selector_pb2.SelectionSpec(
                session_id=session_id,
                pool=spec.pool,
                run_id=spec.run_id,
                n_samples=sel.n_samples if sel.n_samples is not None else -1,
                proportion_samples=sel.proportion_samples if sel.proportion_samples is not None else -1.0,
                min_distance=sel.min_distance,
                model=model.model,
                sampling_key=cache_sampling_key(spec.config.worker.frame_sampling, model.numbering),
                cached_files=tally.files_from_cache,
            )
        )
        requests: queue.Queue[selector_pb2.SelectRequest | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        cancel = threading.Event()
        stopped = threading.Event()
        done_files = [tally.files_from_cache]
        progress = FrameProgress(observer, interval_s=self.progress_interval_s)
        t_embed = time.monotonic()

        def send(msg: selector_pb2.SelectRequest) -> None:
            # Bounded queue: embedders slow down when the selector cannot keep up.
            while not cancel.is_set():
                try:
                    requests.put(msg, timeout=0.2)
                    return
                except queue.Full:
                    continue
            raise RunFailed("cancelled")

        def embed_one(file: common_pb2.FileRef) -> None:
            if stopped.is_set():
                return
            try:
                self._embed_file(spec, file, model.model, tally, send, progress)
            except Exception:
                stopped.set()  # the run fails: the files still queued need not be embedded
                raise
            with tally.lock:
                done_files[0] += 1
                progress.report(files_done=done_files[0], files_skipped=len(tally.skipped))

        def feed() -> None:
            try:
                workers = self.embedders.streams
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as ex:
                    list(ex.map(embed_one, files))
                timings["embed"] = time.monotonic() - t_embed
                observer.set_state(
                    scheduler_pb2.SELECTING,
                    f"selecting from {tally.frames_embedded + tally.frames_from_cache} frame(s) "
                    f"of {len(tally.processed)} file(s)",
                )
            except Exception as e:  # reported through the Select call's failure
                log.warning("embedding stage stopped: %s", e)
                feed_error.append(e)
            finally:
                # The end marker must not block: if the Select call already failed,
                # nobody drains the queue any more.
                while not cancel.is_set():
                    try:
                        requests.put(None, timeout=0.2)
                        break
                    except queue.Full:
                        continue

        def request_stream() -> Iterator[selector_pb2.SelectRequest]:
            yield first
            while True:
                item = requests.get()
                if item is None:
                    return
                yield item

        feed_error: list[BaseException] = []
        feeder = threading.Thread(target=feed, name=f"feed-{spec.run_id[:8]}", daemon=True)
        feeder.start()
        try:
            t = time.monotonic()
            response = self.selector.select(request_stream())
            timings["select"] = time.monotonic() - t - timings.get("embed", 0.0)
        except grpc.RpcError as e:
            cancel.set()
            raise RunFailed(f"selection failed: {rpc_text(e)}") from None
        finally:
            cancel.set()
            feeder.join()
        if feed_error:
            if isinstance(feed_error[0], RunFailed):
                raise feed_error[0]  # its message already says what failed
            raise RunFailed(f"embedding failed: {feed_error[0]}")
        return response

    def _load_cached(
        self,
        spec: RunSpec,
        files: list[common_pb2.FileRef],
        model: embedder_pb2.ModelInfo,
        session_id: str,
        tally: _Tally,
        observer: RunObserver,
    ) -> list[common_pb2.FileRef]:
        """Has the selector load the files the pool's embedding cache holds into the session;
        returns the others, which must be embedded."""
        scope = selector_pb2.EmbeddingScope(
            model=model.model,
            dim=model.dim,
            sampling_key=cache_sampling_key(spec.config.worker.frame_sampling, model.numbering),
        )

        def requests() -> Iterator[selector_pb2.LoadCachedRequest]:
            yield selector_pb2.LoadCachedRequest(session_id=session_id, pool=spec.pool, scope=scope)
            for start in range(0, len(files), CACHE_LOOKUP_CHUNK):
                yield selector_pb2.LoadCachedRequest(files=files[start : start + CACHE_LOOKUP_CHUNK])

        hits: set[tuple[str, int, str]] = set()
        try:
            for chunk in self.selector.load_cached(requests()):
                tally.cache_unreadable += chunk.unreadable
                for hit in chunk.hits:
                    hits.add(_file_key(hit.file))
                    tally.files_from_cache += 1
                    tally.frames_from_cache += hit.vector_count
                    tally.processed.append(
                        {
                            "path": hit.file.path,
                            "size": hit.file.size,
                            "frames": hit.frame_count,
                            "frames_embedded": 0,
                            "frames_from_cache": hit.vector_count,
                            "from_cache": True,
                        }
                    )
        except grpc.RpcError as e:
            raise RunFailed(f"cannot look files up in the pool's embedding cache: {rpc_text(e)}") from None
        observer.set_progress(files_done=tally.files_from_cache, frames_embedded=0)
        return [f for f in files if _file_key(f) not in hits]

    def _embed_file(
        self,
        spec: RunSpec,
        file: common_pb2.FileRef,
        model: str,
        tally: _Tally,
        send: Any,
        progress: FrameProgress,
    ) -> None:
        """Embeds one file on a replica, moving it to another when one fails or embeds with
        another model than the run's `model`, after waiting for a replica to be up.

        A broken file is skipped only when an embedder says so (`skipped`); an embedder that
        fails FILE_ATTEMPTS times fails the run, naming it: that is not the file's fault.
        """
        backend = spec.config.worker.model_backend
        tried: set[str] = set()
        last_error = ""
        for _ in range(FILE_ATTEMPTS):
            replica = self._replica(tried, last_error)
            tried.add(replica.address)
            frames = 0
            media_kind = ""
            try:
                for event in replica.embed_file(spec.input, file, spec.config.worker.frame_sampling, backend):
                    kind = event.WhichOneof("event")
                    if kind == "batch":
                        frames += len(event.batch.frame_indices)
                        send(
                            selector_pb2.SelectRequest(
                                batch=selector_pb2.CandidateBatch(file=file, vectors=event.batch)
                            )
                        )
                        progress.add(len(event.batch.frame_indices))
                    elif kind == "info":
                        media_kind = event.info.kind
                    elif kind == "done" and event.done.model != model:
                        # Vectors of another model must not meet the run's in one selection or
                        # cache entry (a replica started with --gpu-resize, say).
                        last_error = (
                            f"{replica.address} embedded with model {event.done.model!r}, "
                            f"not the run's model {model!r}"
                        )
                        log.warning("embedding %s: %s; retrying elsewhere", file.path, last_error)
                        break
                    elif kind == "done":
                        send(
                            selector_pb2.SelectRequest(
                                file_complete=selector_pb2.FileComplete(
                                    file=file, frame_count=event.done.frame_count, kind=media_kind
                                )
                            )
                        )
                        with tally.lock:
                            tally.processed.append(
                                {
                                    "path": file.path,
                                    "size": file.size,
                                    "frames": event.done.frame_count,
                                    "frames_embedded": frames,
                                    "from_cache": False,
                                }
                            )
                            tally.frames_embedded += frames
                            tally.frames_decoded += event.done.frame_count
                            tally.decode_s += event.done.decode_seconds
                            tally.embed_s += event.done.embed_seconds
                        return
                    elif kind == "skipped":
                        send(selector_pb2.SelectRequest(file_dropped=selector_pb2.FileDropped(file=file)))
                        progress.add(-frames)
                        with tally.lock:
                            tally.skipped.append({"path": file.path, "reason": event.skipped.reason})
                        return
                else:
                    last_error = f"{replica.address}: the embedder ended the stream without a result"
            except grpc.RpcError as e:
                refusal = replica.backend_refusal(backend) if is_refusal(e) else None
                if refusal is not None:
                    raise backend_refused(backend, refusal, f"{replica.address}: ") from None
                last_error = f"{replica.address}: {rpc_text(e)}"
                log.warning("embedding %s failed on %s; retrying", file.path, last_error)
            send(selector_pb2.SelectRequest(file_dropped=selector_pb2.FileDropped(file=file)))
            progress.add(-frames)
        raise RunFailed(
            f"the embedders failed {FILE_ATTEMPTS} times on {printable(file.path)}; last: {last_error}. "
            "The pool is unchanged; check the embedders' logs and run again"
        )

    def _render(self, spec: RunSpec, picks: list[selector_pb2.Pick], rendered: dict[str, str]) -> None:
        by_file: dict[tuple[str, int, str], list[selector_pb2.Pick]] = defaultdict(list)
        files: dict[tuple[str, int, str], common_pb2.FileRef] = {}
        for p in picks:
            if p.frame_name not in rendered:
                by_file[_file_key(p.file)].append(p)
                files[_file_key(p.file)] = p.file

        def render_one(key: tuple[str, int, str]) -> None:
            group = by_file[key]
            request = embedder_pb2.RenderFramesRequest(
                source=spec.input,
                file=files[key],
                frame_indices=[p.frame_index for p in group],
                target=spec.pool,
                target_keys=[frame_key(spec.run_id, p.frame_name) for p in group],
            )
            try:
                written = self._replica().render_frames(request)
            except grpc.RpcError as e:
                raise RunFailed(f"cannot write frames of {files[key].path}: {rpc_text(e)}") from None
            for p, k in zip(group, written, strict=True):
                rendered[p.frame_name] = k

        with ThreadPoolExecutor(max_workers=max(2, len(self.embedders.replicas))) as ex:
            list(ex.map(render_one, list(by_file)))

    def _render_and_commit(
        self,
        spec: RunSpec,
        selection: selector_pb2.SelectResponse,
        session_id: str,
        timings: dict[str, float],
    ) -> selector_pb2.Committed:
        rendered: dict[str, str] = {}
        picks = list(selection.picks)
        tag = tag_name_for(spec.run_id)
        timings["render"] = 0.0
        timings["commit"] = 0.0
        for _ in range(MAX_COMMIT_ROUNDS):
            t = time.monotonic()
            self._render(spec, picks, rendered)
            timings["render"] += time.monotonic() - t
            t = time.monotonic()
            request = selector_pb2.CommitRequest(
                session_id=session_id,
                tag_name=tag,
                frames=[selector_pb2.RenderedFrame(frame_name=n, key=k) for n, k in rendered.items()],
            )
            try:
                response = self.selector.commit(request)
            except grpc.RpcError as e:
                raise RunFailed(
                    f"commit failed: {rpc_text(e)}. The pool holds either nothing of this run "
                    "or its complete commit; run again to continue"
                ) from None
            finally:
                timings["commit"] += time.monotonic() - t
            if response.WhichOneof("outcome") == "committed":
                return response.committed
            picks = list(response.need_frames.picks)
        raise RunFailed(f"the pool kept changing: no commit after {MAX_COMMIT_ROUNDS} rounds; run again")

    def _finish(
        self,
        report: dict[str, Any],
        tally: _Tally,
        timings: dict[str, float],
        t_start: float,
        picks: list[selector_pb2.Pick],
        committed: selector_pb2.Committed | None,
        pool_before: selector_pb2.PoolSummary,
    ) -> dict[str, Any]:
        timings["total"] = time.monotonic() - t_start
        report["files"]["processed"] = sorted(tally.processed, key=lambda f: str(f["path"]))
        report["files"]["skipped"] = sorted(tally.skipped, key=lambda f: f["path"])
        report["frames"] = {
            "decoded": tally.frames_decoded,
            "embedded": tally.frames_embedded,
            "from_cache": tally.frames_from_cache,
            "selected": len(picks),
        }
        report["embedding_cache"] = {
            "files_from_cache": tally.files_from_cache,
            "frames_from_cache": tally.frames_from_cache,
            "files_embedded": sum(1 for f in tally.processed if not f.get("from_cache")),
            "unusable_entries": tally.cache_unreadable,
            "entries_written": tally.cache_written,
            "write_failures": tally.cache_write_failures,
        }
        report["selected"] = [
            {
                "frame_name": p.frame_name,
                "source": p.file.path,
                "frame_index": p.frame_index,
                "distance": p.distance,
            }
            for p in picks
        ]
        report["tag"] = committed.tag_name if committed is not None else ""
        # After a lost commit race the pool holds other runs' frames too: report the pool
        # the commit produced, not the one the run started from.
        report["pool_after"] = {
            "version": committed.version if committed is not None else pool_before.version,
            "frames": committed.pool_frame_count if committed is not None else pool_before.frame_count,
        }
        report["commit_attempts"] = committed.attempts if committed is not None else 0
        report["seconds"] = {k: round(v, 4) for k, v in timings.items()}
        report["seconds"]["decode_in_embedder"] = round(tally.decode_s, 4)
        report["seconds"]["model_in_embedder"] = round(tally.embed_s, 4)
        report["finished_at"] = datetime.now(UTC).isoformat()
        return report


def nested_pool_prefix(inp: common_pb2.StoreLocation, pool: common_pb2.StoreLocation) -> str | None:
    """The key prefix of the pool inside the INPUT datasource, when the input holds the pool.

    The pool's own frames and state must never be listed as input, whatever the store.
    """
    # Normalised (`..`, symlinks) so that `in/sub/../pool` is excluded as `pool/`.
    return prefix_within(inp, pool) or None
