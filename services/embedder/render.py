"""Renders chosen frames of one file as full-resolution PNGs: the core of RenderFrames."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from datapool.errors import InvalidArgument
from services.embedder.decode import FrameDecoder

# zlib level 6 (Pillow's default): PNGs are written once per picked frame and kept
# in the pool for good, so smaller files are worth a few milliseconds each.
_PNG_COMPRESS_LEVEL = 6


def encode_png(frame: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame, mode="RGB").save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def render_frames(path: str | Path, frame_indices: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """`(frame_index, png)` for each distinct requested index, in increasing index order.

    Decodes sequentially from the start (frame numbers are decode positions, so
    seeking could not find them reliably) and stops after the last wanted frame.
    Raises InvalidArgument naming an index the file does not have, UndecodableFile
    if the file cannot be decoded.
    """
    wanted = sorted(set(frame_indices))
    if not wanted:
        return
    if wanted[0] < 0:
        raise InvalidArgument(f"frame_indices: {wanted[0]} is negative")
    last = wanted[-1]
    with FrameDecoder(path, size=None) as decoder:
        for index, frame in decoder.frames(only=frozenset(wanted)):
            yield index, encode_png(frame)
            if index == last:
                return
        frame_count = decoder.frames_decoded
    missing = next(i for i in wanted if i >= frame_count)
    raise InvalidArgument(
        f"frame_indices: frame {missing} is beyond the end of the file ({frame_count} frames)"
    )
