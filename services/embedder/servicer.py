"""The Embedder gRPC servicer: converts messages and calls the transport-free core."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, overload

import grpc

from datapool.errors import InvalidArgument
from datapool.pool.files import FileRef
from datapool.sampling import Sampling
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from datapool.vectors import dtype_name, to_batch
from services.common.faults import fault_point
from services.common.refusals import BACKEND_REFUSED_KEY
from services.embedder.backend_set import BackendChoice, BackendSet
from services.embedder.backends.base import BackendUnavailable, ModelBackend, UnknownBackend
from services.embedder.decode import MediaInfo, UndecodableFile, numbering_key
from services.embedder.embedding import DEFAULT_BATCH_SIZE, EmbedSummary, FrameBatch, embed_file
from services.embedder.frame_encoding import ImageFormat
from services.embedder.frame_writes import FrameWriter
from services.embedder.locations_guard import AllowedRoots, check_frame_key
from services.embedder.metrics import BUSY, FRAMES_DECODED, FRAMES_EMBEDDED
from services.embedder.render import render_frames
from services.embedder.source import (
    SourceFileChanged,
    SourceFileDeleted,
    check_unchanged,
    listed_file_path,
    open_location,
)

log = logging.getLogger(__name__)

# 1024 x 1280 float32 is 5 MiB per message, well inside the 64 MiB limit.
MAX_BATCH_SIZE = 1024

SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"].full_name


def _info_pb(info: MediaInfo) -> embedder_pb2.MediaInfo:
    # The dataclass mirrors the message field for field.
    return embedder_pb2.MediaInfo(**dataclasses.asdict(info))


def _sampling(pb: embedder_pb2.FrameSampling) -> Sampling:
    try:
        return Sampling.from_pb(pb)
    except ValueError as e:
        raise InvalidArgument(f"sampling.{e}") from None


def _batch_pb(batch: FrameBatch, dtype: str) -> common_pb2.VectorBatch:
    return to_batch(batch.vectors, dtype, batch.frame_indices)


def _summary_pb(summary: EmbedSummary) -> embedder_pb2.EmbedSummary:
    return embedder_pb2.EmbedSummary(**dataclasses.asdict(summary))


def _skipped(reason: str) -> embedder_pb2.EmbedFileResponse:
    return embedder_pb2.EmbedFileResponse(skipped=embedder_pb2.FileSkipped(reason=reason))


class EmbedderServicer(embedder_pb2_grpc.EmbedderServicer):
    def __init__(self, backends: BackendSet, allowed: AllowedRoots | None = None) -> None:
        self.backends = backends
        self.allowed = allowed or AllowedRoots()

    def EmbedFile(
        self, request: embedder_pb2.EmbedFileRequest, context: grpc.ServicerContext
    ) -> Iterator[embedder_pb2.EmbedFileResponse]:
        batch_size = request.batch_size or DEFAULT_BATCH_SIZE
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InvalidArgument(f"batch_size must be 0 (default) or 1..{MAX_BATCH_SIZE}, got {batch_size}")
        try:
            dtype = dtype_name(request.dtype)
        except ValueError as e:
            raise InvalidArgument(f"dtype: {e}") from None
        sampling = _sampling(request.sampling)
        backend = self._backend(request.backend, context)
        listed = FileRef.from_proto(request.file)
        self.allowed.check_location(request.source, "source")
        store = open_location(request.source, "source")
        try:
            with (
                BUSY.call(),
                listed_file_path(store, listed) as path,
                contextlib.closing(
                    embed_file(self._allowed(path, request.source), backend, batch_size, sampling)
                ) as events,
            ):
                for event in events:
                    if not context.is_active():
                        log.info("EmbedFile %s: client went away, stopping", listed.path)
                        return
                    if isinstance(event, MediaInfo):
                        yield embedder_pb2.EmbedFileResponse(info=_info_pb(event))
                    elif isinstance(event, FrameBatch):
                        FRAMES_EMBEDDED.labels(backend.name).inc(len(event.frame_indices))
                        yield embedder_pb2.EmbedFileResponse(batch=_batch_pb(event, dtype))
                        # Tests hold replicas here, mid-file, to kill one with a file in flight.
                        fault_point("embedder.embed.batch_sent")
                    else:
                        # Vectors of a file rewritten while we decoded it match neither version.
                        check_unchanged(store, listed, when="while embedding")
                        FRAMES_DECODED.inc(event.frame_count)
                        log.info(
                            "embedded %s: %d frames, decode %.2fs, embed %.2fs",
                            listed.path,
                            event.frame_count,
                            event.decode_seconds,
                            event.embed_seconds,
                        )
                        yield embedder_pb2.EmbedFileResponse(done=_summary_pb(event))
        except (UndecodableFile, SourceFileChanged, SourceFileDeleted) as e:
            log.info("skipped %s: %s", listed.path, e.reason)
            yield _skipped(e.reason)

    def RenderFrames(
        self, request: embedder_pb2.RenderFramesRequest, context: grpc.ServicerContext
    ) -> embedder_pb2.RenderFramesResponse:
        indices = list(request.frame_indices)
        keys = list(request.target_keys)
        if len(indices) != len(keys):
            raise InvalidArgument(
                f"target_keys: {len(keys)} keys for {len(indices)} frame_indices; they must pair up"
            )
        image_format = ImageFormat.from_request(request.image_format, request.jpg_quality)
        for key in keys:
            check_frame_key(key, image_format.suffix)
        listed = FileRef.from_proto(request.file)
        self.allowed.check_location(request.source, "source")
        self.allowed.check_location(request.target, "target")
        source = open_location(request.source, "source")
        target = open_location(request.target, "target")
        keys_by_index: dict[int, list[str]] = {}
        for index, key in zip(indices, keys, strict=True):
            keys_by_index.setdefault(index, []).append(key)
        with listed_file_path(source, listed) as path, FrameWriter(target) as writer:
            frames = render_frames(
                self._allowed(path, request.source), indices, image_format, request.frame_count or None
            )
            for index, image in frames:
                if not context.is_active():
                    break
                writer.submit(index, keys_by_index[index], image)
            written = writer.finish()
        return embedder_pb2.RenderFramesResponse(written_keys=[k for k in keys if k in written])

    @overload
    def _backend(self, name: str, context: grpc.ServicerContext) -> ModelBackend: ...

    @overload
    def _backend(self, name: str, context: grpc.ServicerContext, load: Literal[False]) -> BackendChoice: ...

    def _backend(
        self, name: str, context: grpc.ServicerContext, load: bool = True
    ) -> ModelBackend | BackendChoice:
        """The backend a request names (`load=False`: only what it would be), marking a refusal
        as one: the same codes also answer a bad request, and the scheduler must tell them apart."""
        try:
            return self.backends.get(name) if load else self.backends.describe(name)
        except (UnknownBackend, BackendUnavailable):
            context.set_trailing_metadata(((BACKEND_REFUSED_KEY, "1"),))
            raise

    def _allowed(self, path: Path, source: common_pb2.StoreLocation) -> Path:
        # A symlink inside a local datasource may point anywhere; the file read is what counts.
        # (An object store's file arrives as a temporary download: nothing to check.)
        if source.WhichOneof("kind") == "local":
            self.allowed.check_path(path, "file.path")
        return path

    def GetModelInfo(
        self, request: embedder_pb2.GetModelInfoRequest, context: grpc.ServicerContext
    ) -> embedder_pb2.ModelInfo:
        # The model id is the one EmbedFile with this backend puts in `done.model`: a GPU
        # backend resizing on the GPU names other vectors than the default's.
        choice = self._backend(request.backend, context, load=False)
        return embedder_pb2.ModelInfo(
            model=choice.model_id,
            dim=choice.dim,
            backend=choice.name,
            backend_reason=choice.reason,
            numbering=numbering_key(),
        )
