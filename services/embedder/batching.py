"""The decode stage of the embed pipeline: a thread that fills batches of frames ahead of the model.

Decoding (PyAV releases the GIL while FFmpeg decodes and scales) overlaps with
inference (ONNX Runtime, torch and TensorRT release it too). Memory is bounded by
construction: at most `ahead` batches wait in the queue, one is being filled and
one is being embedded, and the frames live in a fixed set of reused buffers, which
a GPU backend pins so the upload is a DMA with no staging copy. A slow consumer
(a client reading the stream slowly) therefore stops the decoder, it never piles up
frames.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.embedder.decode import FrameDecoder
from services.embedder.model import ModelBackend
from services.embedder.sampling import Sampling

# Batches decoded ahead of the model: enough to hide decode time behind
# inference, few enough to bound memory (64 frames at 224x224 are ~10 MB,
# at 1280x720 for a GPU backend ~180 MB).
DECODE_AHEAD = 2
# One batch filling, DECODE_AHEAD queued, one being embedded.
MAX_BUFFERS = DECODE_AHEAD + 2
_POLL_S = 0.1


@dataclass
class Pixels:
    """A batch of decoded frames: `frames` is a view of a pooled buffer, valid until released."""

    frame_indices: list[int]
    frames: NDArray[np.uint8]
    buffer: NDArray[np.uint8]


class Done:
    pass


class Stopped(Exception):
    """The consumer went away while the decoder waited."""


class BatchDecoder(threading.Thread):
    """Decodes `decoder` into batches of `batch_size` frames on its own thread.

    The consumer reads `out` and must `release(batch)` once it no longer needs the
    frames; `stop` ends the thread promptly. The thread owns the decoder and closes it.
    """

    def __init__(
        self,
        decoder: FrameDecoder,
        backend: ModelBackend,
        batch_size: int,
        sampling: Sampling | None = None,
        ahead: int = DECODE_AHEAD,
    ) -> None:
        super().__init__(name=f"decode-{decoder.path.name}", daemon=True)
        self.decoder = decoder
        self.backend = backend
        self.batch_size = batch_size
        self.sampling = sampling
        self.out: queue.Queue[Pixels | Done | BaseException] = queue.Queue(maxsize=ahead)
        self.max_buffers = ahead + 2
        self.buffers_made = 0  # for tests and the benchmark: memory is bounded by this
        self._free: queue.Queue[NDArray[np.uint8]] = queue.Queue()
        self._live = 0  # buffers of the current shape in existence
        self.stop = threading.Event()

    def release(self, batch: Pixels) -> None:
        self._free.put(batch.buffer)

    def run(self) -> None:
        try:
            self._decode()
            self._put(Done())
        except Stopped:
            return
        except BaseException as e:
            self._put_quietly(e)
        finally:
            # The thread owns the decoder once started: closing it from another
            # thread mid-decode would free buffers under FFmpeg's feet.
            self.decoder.close()

    def _decode(self) -> None:
        buffer: NDArray[np.uint8] | None = None
        indices: list[int] = []
        for index, frame in self.decoder.frames(sampling=self.sampling):
            if buffer is not None and frame.shape != buffer.shape[1:]:
                # A stream that changes resolution mid-way: ship what we have, start anew.
                self._put(Pixels(indices, buffer[: len(indices)], buffer))
                buffer, indices = None, []
            if buffer is None:
                buffer = self._buffer(frame.shape[0], frame.shape[1])
            buffer[len(indices)] = frame
            indices.append(index)
            if len(indices) == self.batch_size:
                self._put(Pixels(indices, buffer, buffer))
                buffer, indices = None, []
        if buffer is not None and indices:
            self._put(Pixels(indices, buffer[: len(indices)], buffer))

    def _buffer(self, height: int, width: int) -> NDArray[np.uint8]:
        shape = (self.batch_size, height, width, 3)
        while True:
            try:
                buffer = self._free.get_nowait()
            except queue.Empty:
                if self._live < self.max_buffers:
                    self._live += 1
                    self.buffers_made += 1
                    return self.backend.frame_buffer(self.batch_size, height, width)
                if self.stop.is_set():
                    raise Stopped from None
                try:
                    buffer = self._free.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
            if buffer.shape == shape:
                return buffer
            self._live -= 1  # a buffer of an earlier resolution: let it go

    def _put(self, item: Pixels | Done | BaseException) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise Stopped

    def _put_quietly(self, item: BaseException) -> None:
        with contextlib.suppress(Stopped):
            self._put(item)
