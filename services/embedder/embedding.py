"""Embeds every frame of one file: the transport-free core of EmbedFile.

`embed_file` yields the same events the RPC streams: one MediaInfo, FrameBatch
after FrameBatch, then one EmbedSummary. If the file turns out undecodable part
way, it raises UndecodableFile after some batches; callers must then discard
those batches (the stream protocol says so).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from services.embedder.decode import FrameDecoder, MediaInfo
from services.embedder.model import ModelBackend

DEFAULT_BATCH_SIZE = 64
# Batches decoded ahead of the model: enough to hide decode time behind
# inference, few enough to bound memory (64 frames at 224x224 are ~10 MB).
_DECODE_AHEAD = 2


@dataclass(frozen=True)
class FrameBatch:
    frame_indices: list[int]
    vectors: NDArray[np.float32]  # len(frame_indices) x dim, rows L2-normalised


@dataclass(frozen=True)
class EmbedSummary:
    frame_count: int
    decode_seconds: float
    embed_seconds: float
    model: str


EmbedEvent = MediaInfo | FrameBatch | EmbedSummary


@dataclass
class _Pixels:
    frame_indices: list[int]
    frames: NDArray[np.uint8]


class _Done:
    pass


class _DecodeThread(threading.Thread):
    """Decodes into a bounded queue so decoding overlaps with inference."""

    def __init__(self, decoder: FrameDecoder, batch_size: int) -> None:
        super().__init__(name=f"decode-{decoder.path.name}", daemon=True)
        self.decoder = decoder
        self.batch_size = batch_size
        self.out: queue.Queue[_Pixels | _Done | BaseException] = queue.Queue(maxsize=_DECODE_AHEAD)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            indices: list[int] = []
            frames: list[NDArray[np.uint8]] = []
            for index, frame in self.decoder.frames():
                indices.append(index)
                frames.append(frame)
                if len(indices) == self.batch_size:
                    if not self._put(_Pixels(indices, np.stack(frames))):
                        return
                    indices, frames = [], []
            if indices and not self._put(_Pixels(indices, np.stack(frames))):
                return
            self._put(_Done())
        except BaseException as e:
            self._put(e)
        finally:
            # The thread owns the decoder once started: closing it from another
            # thread mid-decode would free buffers under FFmpeg's feet.
            self.decoder.close()

    def _put(self, item: _Pixels | _Done | BaseException) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def embed_file(
    path: str | Path, backend: ModelBackend, batch_size: int = DEFAULT_BATCH_SIZE
) -> Generator[EmbedEvent, None, None]:
    """Decodes `path` at the model's input size and embeds every frame.

    Raises UndecodableFile (before or after yielding batches). Closing the
    iterator early stops decoding promptly.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    decoder = FrameDecoder(path, size=backend.input_size)
    worker = _DecodeThread(decoder, batch_size)
    try:
        yield decoder.info
    except BaseException:
        decoder.close()
        raise
    embed_seconds = 0.0
    frame_count = 0
    worker.start()
    try:
        while True:
            item = worker.out.get()
            if isinstance(item, _Done):
                break
            if isinstance(item, BaseException):
                raise item
            started = time.perf_counter()
            vectors = backend.embed(item.frames)
            embed_seconds += time.perf_counter() - started
            frame_count += len(item.frame_indices)
            yield FrameBatch(item.frame_indices, vectors)
    finally:
        worker.stop.set()
        worker.join(timeout=10)
    yield EmbedSummary(
        frame_count=frame_count,
        decode_seconds=decoder.decode_seconds,
        embed_seconds=embed_seconds,
        model=backend.model_id,
    )
