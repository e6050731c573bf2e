"""Which frames of a video get embedded: every frame, every n-th, or a target rate in time.

Sampling never renumbers: a kept frame keeps its index among all decoded frames,
so its name and RenderFrames see the same picture whatever rule embedded it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from datapool.config import FrameSampling


@dataclass(frozen=True)
class Sampling:
    """`every_nth` > 1 keeps frames 0, n, 2n, ...; `target_fps` keeps the first frame at or
    after each multiple of 1/target_fps seconds after the first frame. At most one is set."""

    every_nth: int = 1
    target_fps: float | None = None

    def __post_init__(self) -> None:
        if self.every_nth < 1:
            raise ValueError(f"every_nth must be >= 1, got {self.every_nth}")
        if self.target_fps is not None:
            if not (math.isfinite(self.target_fps) and self.target_fps > 0):
                raise ValueError(f"target_fps must be a finite number > 0, got {self.target_fps}")
            if self.every_nth != 1:
                raise ValueError("set only one of every_nth and target_fps")

    @classmethod
    def from_config(cls, config: FrameSampling) -> Sampling:
        return cls(every_nth=config.every_nth or 1, target_fps=config.target_fps)

    @property
    def keeps_all(self) -> bool:
        return self.every_nth == 1 and self.target_fps is None

    def picker(self, fps: float) -> FramePicker:
        """A fresh picker for one pass over one video whose nominal rate is `fps` (0: unknown)."""
        return FramePicker(self, fps)


EVERY_FRAME = Sampling()


class FramePicker:
    """Decides frame by frame, in decode order, whether the rule keeps it.

    Time is the frame's presentation time (pts x time_base) relative to the first
    frame, so variable-frame-rate videos are sampled evenly in time. A frame without
    a pts falls back to index / fps; when the rate is unknown too, the frame is kept.
    """

    def __init__(self, sampling: Sampling, fps: float) -> None:
        self._every_nth = sampling.every_nth
        self._rate = Fraction(sampling.target_fps) if sampling.target_fps is not None else None
        self._fps = Fraction(fps) if fps > 0 else None
        self._first_time: Fraction | None = None
        # The next multiple of 1/target_fps still waiting for a frame.
        self._next_slot = 0

    def keep(self, index: int, pts: int | None, time_base: Fraction | None) -> bool:
        if self._rate is None:
            return index % self._every_nth == 0
        seconds = self._seconds(index, pts, time_base)
        if seconds is None:
            return True
        # Exact rationals: a frame exactly on a multiple of 1/target_fps must land in its
        # slot, which float rounding would make a matter of luck.
        slot = math.floor(seconds * self._rate)
        if slot < self._next_slot:
            return False
        self._next_slot = slot + 1
        return True

    def _seconds(self, index: int, pts: int | None, time_base: Fraction | None) -> Fraction | None:
        if pts is not None and time_base is not None:
            at = pts * time_base
            if self._first_time is None:
                self._first_time = at
            return at - self._first_time
        if self._fps is not None:
            return index / self._fps
        return None
