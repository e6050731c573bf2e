"""Turns decoded pictures upright, as players show them, from the display matrix side data.

Phones store portrait video as landscape pictures plus a display matrix that says
"rotate by 90 degrees" (and, rarely, mirror). The embedder and RenderFrames both
apply it, so embeddings and pool PNGs show what a person sees in a player.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# Fixed-point 16.16 entries a, b, c, d of FFmpeg's 3x3 display matrix (libavutil/display.h):
# a pixel (p, q) of the decoded picture is shown at (a*p + c*q, b*p + d*q) (+ translation).
_warned: set[tuple[int, ...]] = set()


class Orientation(NamedTuple):
    """Swap the axes first (transpose), then mirror left-right and/or top-bottom."""

    transpose: bool = False
    flip_x: bool = False
    flip_y: bool = False

    def coded_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The (width, height) to scale the decoded picture to, so that it is `size` once upright."""
        return (size[1], size[0]) if self.transpose else size

    def apply(self, rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if self == UPRIGHT:
            return rgb
        out = rgb.transpose(1, 0, 2) if self.transpose else rgb
        if self.flip_x:
            out = out[:, ::-1]
        if self.flip_y:
            out = out[::-1]
        # Contiguous again: batches are stacked and PNGs written from this buffer.
        return np.ascontiguousarray(out)


UPRIGHT = Orientation()


def orientation_of(frame: Any) -> Orientation:
    """The frame's display orientation; UPRIGHT without a matrix or for angles that are
    not a multiple of 90 degrees (those are kept as decoded, with one warning per matrix)."""
    side = frame.side_data.get(SideDataType.DISPLAYMATRIX)
    if side is None:
        return UPRIGHT
    m = np.frombuffer(bytes(side), dtype=np.int32)
    if m.size != 9:
        return UPRIGHT
    a, b, c, d = int(m[0]), int(m[1]), int(m[3]), int(m[4])
    if b == 0 and c == 0 and abs(a) == abs(d) != 0:
        return Orientation(transpose=False, flip_x=a < 0, flip_y=d < 0)
    if a == 0 and d == 0 and abs(b) == abs(c) != 0:
        # (p, q) -> (c*q, b*p): swap axes, then mirror each axis whose factor is negative.
        return Orientation(transpose=True, flip_x=c < 0, flip_y=b < 0)
    key = tuple(int(x) for x in m)
    if key not in _warned:
        _warned.add(key)
        log.warning("display matrix %s is not a multiple of 90 degrees; frames are kept as decoded", key)
    return UPRIGHT
