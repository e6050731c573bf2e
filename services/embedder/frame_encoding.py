"""The image files rendered frames are written as: PNG (lossless, the default) or JPEG.

PNGs come from FFmpeg's PNG encoder (libavcodec, through PyAV), which encodes several frames
at once in its own threads: the GIL does not serialise them. JPEGs come from Pillow, on the
caller's threads (see `encode_jpg`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from datapool.config import DEFAULT_JPG_QUALITY
from datapool.errors import InvalidArgument

IMAGE_FORMATS = ("png", "jpg")
# PNG row filter "up" at zlib level 1: on 720p video frames this writes a PNG 9x faster than
# Pillow's default (adaptive filters, level 6: 108 against 981 ms a frame on a busy core) for
# 14% more bytes (576 against 506 KiB), and 2x faster and 8% smaller than Pillow at level 1;
# level 3 takes twice as long for 11% fewer bytes (bench/bench_render.py --png-levels).
# Rendering is on the run's critical path; a pick's bytes are stored once.
PNG_OPTIONS = {"pred": "up", "compression_level": "1"}


@dataclass(frozen=True)
class ImageFormat:
    """`name` is one of IMAGE_FORMATS; `jpg_quality` (1-100) applies to jpg only."""

    name: str = "png"
    jpg_quality: int = DEFAULT_JPG_QUALITY

    @property
    def suffix(self) -> str:
        return f".{self.name}"

    @classmethod
    def from_request(cls, name: str, jpg_quality: int) -> ImageFormat:
        """From RenderFramesRequest's fields, where "" and 0 mean the defaults."""
        name = name or "png"
        if name not in IMAGE_FORMATS:
            raise InvalidArgument(f"image_format: {name[:40]!r} is not one of {', '.join(IMAGE_FORMATS)}")
        quality = jpg_quality or DEFAULT_JPG_QUALITY
        if not 1 <= quality <= 100:
            raise InvalidArgument(f"jpg_quality: {quality} is not in 1..100")
        return cls(name, quality)

    def encode_jpg(self, frame: NDArray[np.uint8]) -> bytes:
        image = Image.fromarray(frame, mode="RGB")
        with _scratch_file() as file:
            image.save(file, format="JPEG", quality=self.jpg_quality)
            file.seek(0)
            return file.read()


PNG = ImageFormat()


class PngStream:
    """PNGs of numbered frames, `threads` at a time; each comes out once, in the order pushed."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._encoder: Any = None
        self._shape: tuple[int, ...] = ()

    def push(self, index: int, frame: NDArray[np.uint8]) -> Iterator[tuple[int, bytes]]:
        """Hands `frame` to the encoder; yields the PNGs that are done."""
        if frame.shape != self._shape:
            # A video may change size midway: an encoder has one size.
            yield from self.finish()
            self._encoder = self._open(frame.shape[1], frame.shape[0])
            self._shape = frame.shape
        picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
        picture.pts = index
        yield from self._packets(picture)

    def finish(self) -> Iterator[tuple[int, bytes]]:
        if self._encoder is not None:
            yield from self._packets(None)
            self._encoder = None
            self._shape = ()

    def _open(self, width: int, height: int) -> Any:
        encoder = av.CodecContext.create("png", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "rgb24"
        encoder.thread_type, encoder.thread_count = "FRAME", self.threads
        encoder.options = dict(PNG_OPTIONS)
        return encoder

    def _packets(self, picture: Any) -> Iterator[tuple[int, bytes]]:
        for packet in self._encoder.encode(picture):
            yield int(packet.pts), bytes(packet)


def encode_png(frame: NDArray[np.uint8]) -> bytes:
    """One frame's PNG, as PngStream writes it."""
    stream = PngStream(threads=1)
    [(_, data)] = [*stream.push(0, frame), *stream.finish()]
    return data


def _scratch_file() -> IO[bytes]:
    # Pillow compresses without the GIL only into a file descriptor (encode_to_file); into a
    # BytesIO it holds the GIL, and the encoder threads would take turns. In memory on Linux.
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("datapool-frame", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()
