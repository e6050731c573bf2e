"""The decode stage of the embed pipeline: a thread that fills batches of frames ahead of the model.

Decoding (PyAV releases the GIL while FFmpeg decodes and scales) overlaps with
inference (ONNX Runtime, torch and TensorRT release it too). Memory is bounded by
construction: at most `ahead` batches wait in the queue, one is being filled and
one is being embedded, and the frames live in a fixed set of reused buffers, which
a GPU backend pins so the upload is a DMA with no staging copy. A slow consumer
(a client reading the stream slowly) therefore stops the decoder, it never piles up
frames; a consumer that goes away stops it within a frame.

A buffer holds `batch_size` frames, or fewer when that many would take more than
MAX_BUFFER_BYTES: frames at 224x224 (every backend by default) never come near it,
full-size frames for --gpu-resize do. A streamed batch therefore has at most
`batch_size` frames, as the last batch of a file or one before a resolution change
always could.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from datapool.sampling import Sampling
from services.embedder.backends.base import ModelBackend
from services.embedder.decode import FrameDecoder, Stopped

# Batches decoded ahead of the model: enough to hide decode time behind inference,
# few enough to bound memory.
DECODE_AHEAD = 2
# One batch filling, DECODE_AHEAD queued, one being embedded.
MAX_BUFFERS = DECODE_AHEAD + 2
# Bytes of frames per buffer. 64 frames are ~10 MB at 224x224 and ~180 MB at 1280x720
# (--gpu-resize), but 1.6 GB at 3840x2160; GPU backends pin their buffers and torch's host
# allocator keeps pinned blocks for reuse rather than freeing them, so without a cap a
# few 4K files would hold many GB of pinned memory. With it, a file in flight holds at
# most MAX_BUFFERS x 256 MiB: 720p keeps 64-frame batches, 1080p gets 43, 4K 10 (the GPU
# resizes at most 64 frames of 720p per step anyway, see backends/cuda.py).
MAX_BUFFER_BYTES = 256 << 20
_POLL_S = 0.1


@dataclass
class Pixels:
    """A batch of decoded frames: `frames` is a view of a pooled buffer, valid until released."""

    frame_indices: list[int]
    frames: NDArray[np.uint8]
    buffer: NDArray[np.uint8]


class Done:
    pass


class BatchDecoder(threading.Thread):
    """Decodes `decoder` into batches of at most `batch_size` frames on its own thread.

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
        max_buffer_bytes: int = MAX_BUFFER_BYTES,
    ) -> None:
        super().__init__(name=f"decode-{decoder.path.name}", daemon=True)
        self.decoder = decoder
        self.backend = backend
        self.batch_size = batch_size
        self.sampling = sampling
        self.max_buffer_bytes = max_buffer_bytes
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
        for index, frame in self.decoder.frames(sampling=self.sampling, stop=self.stop):
            if buffer is not None and frame.shape != buffer.shape[1:]:
                # A stream that changes resolution mid-way: ship what we have, start anew.
                self._put(Pixels(indices, buffer[: len(indices)], buffer))
                buffer, indices = None, []
            if buffer is None:
                buffer = self._buffer(frame.shape[0], frame.shape[1])
            buffer[len(indices)] = frame
            indices.append(index)
            if len(indices) == len(buffer):
                self._put(Pixels(indices, buffer, buffer))
                buffer, indices = None, []
        if buffer is not None and indices:
            self._put(Pixels(indices, buffer[: len(indices)], buffer))

    def _frames_per_buffer(self, height: int, width: int) -> int:
        return max(1, min(self.batch_size, self.max_buffer_bytes // (height * width * 3)))

    def _buffer(self, height: int, width: int) -> NDArray[np.uint8]:
        count = self._frames_per_buffer(height, width)
        shape = (count, height, width, 3)
        while True:
            try:
                buffer = self._free.get_nowait()
            except queue.Empty:
                if self._live < self.max_buffers:
                    self._live += 1
                    self.buffers_made += 1
                    return self.backend.frame_buffer(count, height, width)
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
