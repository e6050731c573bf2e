"""The image files rendered frames are written as: PNG (lossless, the default) or JPEG."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from datapool.config import DEFAULT_JPG_QUALITY
from datapool.errors import InvalidArgument

IMAGE_FORMATS = ("png", "jpg")
# zlib level 1: on 720p video frames it writes a PNG ~3-4x faster than Pillow's default 6 for
# ~10% more bytes (bench/bench_render.py --png-levels). Rendering is on the run's critical
# path; the bytes are stored once per pick.
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
        """The file's bytes. Pillow releases the GIL while it compresses, so threads run in parallel."""
        buffer = io.BytesIO()
        image = Image.fromarray(frame, mode="RGB")
        if self.name == "jpg":
            image.save(buffer, format="JPEG", quality=self.jpg_quality)
        else:
            image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buffer.getvalue()


PNG = ImageFormat()
