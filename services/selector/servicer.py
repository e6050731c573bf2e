"""gRPC face of the selector: converts messages and calls SelectorService, nothing more."""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc

from datapool.errors import InvalidArgument
from datapool.pool.cache_entry import CacheScope
from datapool.pool.files import FileRef
from datapool.pool.repository import PoolRepository
from datapool.storage import StoreError, open_store
from datapool.v1 import common_pb2, selector_pb2, selector_pb2_grpc
from datapool.vectors import dtype_name, to_batch
from services.selector.model import Pick
from services.selector.selection_priority import SelectionThreads
from services.selector.service import SelectorService, SelectStream
from services.selector.session import Committed, SelectionSpec

SERVICE_NAME = selector_pb2.DESCRIPTOR.services_by_name["Selector"].full_name
# Hits per CachedFiles message: well under the message size limit with long paths.
_CACHED_FILES_CHUNK = 10_000


class SelectorServicer(selector_pb2_grpc.SelectorServicer):
    def __init__(
        self, service: SelectorService | None = None, selection_threads: SelectionThreads | None = None
    ) -> None:
        """`selection_threads`: where each Select runs (at a lower CPU priority than the read
        calls, `--selection-nice`); None runs it on the server's thread."""
        self.service = service or SelectorService()
        self.selection_threads = selection_threads

    def GetPool(
        self, request: selector_pb2.GetPoolRequest, context: grpc.ServicerContext
    ) -> selector_pb2.PoolSummary:
        summary = self.service.pool_summary(_repository(request.pool))
        tags = [
            selector_pb2.Tag(
                name=s.tag,
                run_id=s.run_id,
                frame_count=s.frame_count,
                created_unix_ms=s.created_unix_ms,
                version=s.version,
            )
            for s in summary.tags
        ]
        return selector_pb2.PoolSummary(
            version=summary.version,
            frame_count=summary.frame_count,
            dim=summary.dim,
            model=summary.model,
            tags=tags,
        )

    def ListProcessedFiles(
        self, request: selector_pb2.GetPoolRequest, context: grpc.ServicerContext
    ) -> Iterator[selector_pb2.ProcessedFiles]:
        listing = self.service.processed_files(_repository(request.pool))
        yield selector_pb2.ProcessedFiles(version=listing.version, frame_count=listing.frame_count)
        for chunk in listing.chunks:
            yield selector_pb2.ProcessedFiles(files=[f.to_proto() for f in chunk])

    def Select(
        self, request_iterator: Iterator[selector_pb2.SelectRequest], context: grpc.ServicerContext
    ) -> selector_pb2.SelectResponse:
        if self.selection_threads is None:
            return self._select(request_iterator, context)
        return self.selection_threads.run(lambda: self._select(request_iterator, context))

    def _select(
        self, request_iterator: Iterator[selector_pb2.SelectRequest], context: grpc.ServicerContext
    ) -> selector_pb2.SelectResponse:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("item") != "spec":
            raise InvalidArgument("the first SelectRequest must carry `spec`")
        spec = _spec(first.spec)
        stream = self.service.open_select(spec, _repository(first.spec.pool))
        try:
            for request in request_iterator:
                _apply(stream, request)
            # A cancelled or expired call stops the selection (it runs without the GIL,
            # so GetPool and the other calls are served meanwhile).
            session = self.service.finish_select(stream, stop=lambda: not context.is_active())
        except BaseException:
            self.service.abandon_select(stream)
            raise
        return selector_pb2.SelectResponse(
            session_id=spec.session_id,
            base_version=session.base_version,
            picks=[_pick_message(p) for p in session.picks],
            candidate_count=session.candidate_count,
            select_seconds=session.select_seconds,
            cache_entries_written=stream.cache_writes.written,
            cache_write_failures=stream.cache_writes.failed,
        )

    def LoadCachedEmbeddings(
        self, request_iterator: Iterator[selector_pb2.LoadCachedRequest], context: grpc.ServicerContext
    ) -> Iterator[selector_pb2.CachedFiles]:
        first = next(request_iterator, None)
        if first is None:
            raise InvalidArgument("LoadCachedEmbeddings needs at least one request")
        files = [FileRef.from_proto(f) for f in first.files]
        for request in request_iterator:
            files.extend(FileRef.from_proto(f) for f in request.files)
        scope = CacheScope(first.scope.model, first.scope.sampling_key)
        load = self.service.load_cached(
            first.session_id, _repository(first.pool), scope, first.scope.dim, files
        )
        hits = [
            selector_pb2.CachedFile(
                file=e.file.to_proto(),
                frame_count=e.frame_count,
                kind=e.kind,
                vector_count=len(e.frame_indices),
            )
            for e in load.hits
        ]
        for start in range(0, max(len(hits), 1), _CACHED_FILES_CHUNK):
            last = start + _CACHED_FILES_CHUNK >= len(hits)
            yield selector_pb2.CachedFiles(
                hits=hits[start : start + _CACHED_FILES_CHUNK], unreadable=load.unreadable if last else 0
            )

    def Commit(
        self, request: selector_pb2.CommitRequest, context: grpc.ServicerContext
    ) -> selector_pb2.CommitResponse:
        frames: dict[str, str] = {}
        for frame in request.frames:
            if not frame.frame_name or not frame.key:
                raise InvalidArgument(f"frames: frame_name and key must both be set, got {frame!r}")
            frames[frame.frame_name] = frame.key
        outcome = self.service.commit(request.session_id, request.tag_name, frames)
        if isinstance(outcome, Committed):
            return selector_pb2.CommitResponse(
                committed=selector_pb2.Committed(
                    version=outcome.version,
                    picks=[_pick_message(p) for p in outcome.picks],
                    tag_name=outcome.tag_name,
                    attempts=outcome.attempts,
                    pool_frame_count=outcome.pool_frame_count,
                )
            )
        return selector_pb2.CommitResponse(
            need_frames=selector_pb2.NeedFrames(
                picks=[_pick_message(p) for p in outcome.picks], base_version=outcome.base_version
            )
        )

    def CloseSession(
        self, request: selector_pb2.CloseSessionRequest, context: grpc.ServicerContext
    ) -> selector_pb2.CloseSessionResponse:
        self.service.close_session(request.session_id)
        return selector_pb2.CloseSessionResponse()

    def ExportPool(
        self, request: selector_pb2.ExportPoolRequest, context: grpc.ServicerContext
    ) -> Iterator[selector_pb2.PoolEntries]:
        chunks = self.service.export(_repository(request.pool), request.tag_name, request.with_vectors)
        for chunk in chunks:
            message = selector_pb2.PoolEntries(
                entries=[
                    selector_pb2.PoolEntry(
                        frame_name=f.frame_name,
                        key=f.key,
                        source_path=f.file.path,
                        frame_index=f.frame_index,
                        tag_name=chunk.tag_name,
                    )
                    for f in chunk.frames
                ]
            )
            if chunk.vectors is not None:
                message.vectors.CopyFrom(
                    to_batch(chunk.vectors, "float32", [f.frame_index for f in chunk.frames])
                )
            yield message

    def GetRunCommit(
        self, request: selector_pb2.GetRunCommitRequest, context: grpc.ServicerContext
    ) -> selector_pb2.RunCommit:
        found = self.service.run_commit(_repository(request.pool), request.run_id)
        if found is None:
            return selector_pb2.RunCommit(found=False)
        return selector_pb2.RunCommit(
            found=True,
            version=found.segment.version,
            pool_frame_count=found.pool_frames,
            tag_name=found.segment.tag,
            picks=[
                selector_pb2.Pick(
                    file=f.file.to_proto(),
                    frame_index=f.frame_index,
                    frame_name=f.frame_name,
                    distance=math.nan if f.distance is None else f.distance,
                )
                for f in found.frames
            ],
            base_frame_count=found.base_frames,
        )


def register(server: grpc.Server, servicer: SelectorServicer | None = None) -> None:
    selector_pb2_grpc.add_SelectorServicer_to_server(servicer or SelectorServicer(), server)


def _repository(location: common_pb2.StoreLocation) -> PoolRepository:
    try:
        return PoolRepository(open_store(location))
    except StoreError as e:
        raise InvalidArgument(f"pool: {e}") from e


def _spec(spec: selector_pb2.SelectionSpec) -> SelectionSpec:
    return SelectionSpec(
        session_id=spec.session_id,
        run_id=spec.run_id,
        n_samples=spec.n_samples,
        proportion_samples=spec.proportion_samples,
        min_distance=spec.min_distance,
        model=spec.model,
        sampling_key=spec.sampling_key,
        cached_files=spec.cached_files,
        base_version=spec.base_version if spec.HasField("base_version") else None,
        image_format=spec.image_format or "png",
    )


def _apply(stream: SelectStream, request: selector_pb2.SelectRequest) -> None:
    item = request.WhichOneof("item")
    if item == "batch":
        batch = request.batch
        try:
            dtype = dtype_name(batch.vectors.dtype)
        except ValueError as e:
            raise InvalidArgument(f"batch.vectors.dtype: {e}") from None
        stream.add_batch(
            FileRef.from_proto(batch.file),
            list(batch.vectors.frame_indices),
            batch.vectors.vectors,
            batch.vectors.dim,
            dtype,
        )
    elif item == "file_complete":
        done = request.file_complete
        stream.complete_file(FileRef.from_proto(done.file), done.frame_count, done.kind)
    elif item == "file_dropped":
        stream.drop_file(FileRef.from_proto(request.file_dropped.file))
    else:
        raise InvalidArgument(f"SelectRequest item {item!r} is only allowed as the first message")


def _pick_message(pick: Pick) -> selector_pb2.Pick:
    return selector_pb2.Pick(
        file=pick.file.to_proto(),
        frame_index=pick.frame_index,
        frame_name=pick.frame_name,
        distance=pick.distance,
    )
