"""The image files rendered frames are written as: PNG (lossless, the default) or JPEG.

PNGs are written here: each row filtered "up" (numpy), the rows deflated by ISA-L (the `isal`
package), in the three chunks a truecolour PNG needs. JPEGs come from Pillow. Both release
the GIL while they compress, so the caller encodes several frames at once on threads.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from typing import IO

import numpy as np
from isal import isal_zlib
from numpy.typing import NDArray
from PIL import Image

from datapool.config import DEFAULT_JPG_QUALITY
from datapool.errors import InvalidArgument

IMAGE_FORMATS = ("png", "jpg")
# Row filter "up" deflated by ISA-L at level 1: on 720p video frames 8-9 ms of CPU and 549 KiB a
# frame, against 33-35 ms and 576 KiB for FFmpeg's PNG encoder (filter up, zlib level 1, used
# before; zlib's level-1 deflate alone took 30 ms of it), 62 ms / 629 KiB for Pillow at level 1
# and 190 ms / 506 KiB at Pillow's default, level 6. Other filters deflate worse at this speed
# (sub: 703 KiB, none: 1064 KiB); ISA-L level 0 writes 645 KiB, level 2 is level 1 within the
# noise, level 3 takes twice as long for more bytes (bench/bench_render.py --png-levels).
# Rendering is on the run's critical path.
PNG_LEVEL = 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type 2: each byte minus the byte above it


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

    def encode(self, frame: NDArray[np.uint8]) -> bytes:
        """The image file of `frame` (rgb24, height x width x 3)."""
        return encode_png(frame) if self.name == "png" else self.encode_jpg(frame)

    def encode_jpg(self, frame: NDArray[np.uint8]) -> bytes:
        image = Image.fromarray(frame, mode="RGB")
        with _scratch_file() as file:
            image.save(file, format="JPEG", quality=self.jpg_quality)
            file.seek(0)
            return file.read()


PNG = ImageFormat()


def encode_png(frame: NDArray[np.uint8]) -> bytes:
    """A lossless 8-bit RGB PNG of `frame` (height x width x 3)."""
    height, width, channels = frame.shape
    if channels != 3:
        raise ValueError(f"encode_png takes RGB frames, not {channels} channels")
    rows = np.ascontiguousarray(frame).reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # wraps around mod 256, as PNG's "up"
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, no interlace
    idat = isal_zlib.compress(filtered, PNG_LEVEL)
    return b"".join((_PNG_SIGNATURE, *_chunk(b"IHDR", header), *_chunk(b"IDAT", idat), *_chunk(b"IEND", b"")))


def _chunk(kind: bytes, data: bytes) -> tuple[bytes, ...]:
    """A PNG chunk's parts: length, type, data, CRC of type and data."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)


def _scratch_file() -> IO[bytes]:
    # Pillow compresses without the GIL only into a file descriptor (encode_to_file); into a
    # BytesIO it holds the GIL, and the encoder threads would take turns. In memory on Linux.
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("datapool-frame", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()
