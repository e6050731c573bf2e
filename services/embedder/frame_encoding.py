"""The image files rendered frames are written as: PNG (lossless, the default) or JPEG."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import IO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from datapool.config import DEFAULT_JPG_QUALITY
from datapool.errors import InvalidArgument

IMAGE_FORMATS = ("png", "jpg")
# zlib level 1: on 720p video frames Pillow writes a PNG ~3.8x faster than at its default 6,
# for ~24% more bytes (629 against 506 KiB; level 9 takes 5x longer than 6 for 6% less;
# bench/bench_render.py --png-levels). Rendering is on the run's critical path, and pool
# storage is cheap next to the time of a run.
PNG_COMPRESS_LEVEL = 1


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
        """The file's bytes; encoder threads run in parallel (see _scratch_file)."""
        image = Image.fromarray(frame, mode="RGB")
        with _scratch_file() as file:
            if self.name == "jpg":
                image.save(file, format="JPEG", quality=self.jpg_quality)
            else:
                image.save(file, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
            file.seek(0)
            return file.read()


def _scratch_file() -> IO[bytes]:
    # Pillow compresses without the GIL only into a file descriptor (encode_to_file); into a
    # BytesIO it holds the GIL, and the encoder threads would take turns. In memory on Linux.
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("datapool-frame", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


PNG = ImageFormat()
