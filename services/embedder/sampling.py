"""Applying a sampling rule (`datapool.sampling.Sampling`) to one video, frame by frame."""

from __future__ import annotations

import math
from fractions import Fraction

from datapool.sampling import Sampling


class FramePicker:
    """Decides frame by frame, in decode order, whether the rule keeps it.

    Time is counted from the first frame: a frame's presentation time (pts x time_base),
    so variable-frame-rate videos are sampled evenly in time. A frame without a pts
    goes on from the last frame with a time at the nominal rate (from frame 0 at 0 s
    when none has one yet), and the first frame with a pts takes the time where those
    before it left off, so both kinds share one clock. When the rate is unknown too, a
    frame without a pts is kept.
    """

    def __init__(self, sampling: Sampling, fps: float) -> None:
        self._every_nth = sampling.every_nth
        self._rate = Fraction(sampling.target_fps) if sampling.target_fps is not None else None
        self._fps = Fraction(fps) if fps > 0 else None
        # pts x time_base minus this is the time since the first frame; set by the first pts.
        self._pts_origin: Fraction | None = None
        # (index, seconds) of the last frame that got a time.
        self._last: tuple[int, Fraction] = (0, Fraction(0))
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
            if self._pts_origin is None:
                self._pts_origin = at - (self._at_nominal_rate(index) or 0)
            seconds = at - self._pts_origin
        else:
            extrapolated = self._at_nominal_rate(index)
            if extrapolated is None:
                return None
            seconds = extrapolated
        self._last = (index, seconds)
        return seconds

    def _at_nominal_rate(self, index: int) -> Fraction | None:
        """`index`'s time going on from the last frame with a time at `fps`, or None (rate unknown)."""
        if self._fps is None:
            return None
        last_index, last_seconds = self._last
        return last_seconds + (index - last_index) / self._fps
