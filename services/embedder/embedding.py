"""Embeds every frame of one file: the transport-free core of EmbedFile.

`embed_file` yields the same events the RPC streams: one MediaInfo, FrameBatch
after FrameBatch, then one EmbedSummary. If the file turns out undecodable part
way, it raises UndecodableFile after some batches; callers must then discard
those batches (the stream protocol says so).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from datapool.sampling import Sampling
from services.embedder.backends.base import ModelBackend
from services.embedder.batching import BatchDecoder, Done
from services.embedder.decode import FrameDecoder, MediaInfo

DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class FrameBatch:
    frame_indices: list[int]
    vectors: NDArray[np.float32]  # len(frame_indices) x dim, rows L2-normalised


@dataclass(frozen=True)
class EmbedSummary:
    frame_count: int  # every frame of the file, sampled or not: frame names are padded to its digits
    decode_seconds: float
    embed_seconds: float
    model: str


EmbedEvent = MediaInfo | FrameBatch | EmbedSummary


def embed_file(
    path: str | Path,
    backend: ModelBackend,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sampling: Sampling | None = None,
) -> Generator[EmbedEvent, None, None]:
    """Decodes `path` at the backend's `decode_size` and embeds the frames `sampling` keeps (all by default).

    Raises UndecodableFile (before or after yielding batches). Closing the
    iterator early stops decoding promptly.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    # CPU backends get frames already scaled by the decoder; GPU backends at decoded size.
    decoder = FrameDecoder(path, size=backend.decode_size)
    worker = BatchDecoder(decoder, backend, batch_size, sampling)
    try:
        yield decoder.info
    except BaseException:
        decoder.close()
        raise
    embed_seconds = 0.0
    worker.start()
    try:
        while True:
            item = worker.out.get()
            if isinstance(item, Done):
                break
            if isinstance(item, BaseException):
                raise item
            started = time.perf_counter()
            vectors = backend.embed(item.frames)
            embed_seconds += time.perf_counter() - started
            # embed() has copied the frames (to the device, or into its own input): the
            # decoder may refill the buffer while we wait for the client to take the vectors.
            worker.release(item)
            yield FrameBatch(item.frame_indices, vectors)
    finally:
        worker.stop.set()
        worker.join(timeout=10)
    yield EmbedSummary(
        frame_count=decoder.frames_decoded,
        decode_seconds=decoder.decode_seconds,
        embed_seconds=embed_seconds,
        model=backend.model_id,
    )
