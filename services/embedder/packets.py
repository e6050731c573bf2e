"""The frames of a video stream, numbered in output order, with two ways to meet an error.

`strict` raises the first FFmpeg error (the fast pass: frame threads or the GPU).
Otherwise a packet the decoder rejects is skipped and a read error is read past
(the careful pass: one software thread), so one broken packet does not cost the
whole video. Either way the numbering is a pure function of the file's bytes and
the decoder settings, which FrameDecoder fixes for that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av
import av.error

# Consecutive broken packets or read errors after which a file counts as undecodable.
MAX_CONSECUTIVE_ERRORS = 32


class TooManyErrors(Exception):
    def __init__(self, index: int, last: av.error.FFmpegError) -> None:
        super().__init__(f"{MAX_CONSECUTIVE_ERRORS} errors in a row at frame {index}")
        self.index = index
        self.last = last


class _ErrorBudget:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.in_a_row = 0

    def spend(self, error: av.error.FFmpegError, index: int) -> None:
        """Returns to read on past `error`, or raises it (strict) or TooManyErrors."""
        if self.strict:
            raise error
        self.in_a_row += 1
        if self.in_a_row >= MAX_CONSECUTIVE_ERRORS:
            raise TooManyErrors(index, error) from None


def numbered_frames(container: Any, strict: bool) -> Iterator[tuple[int, Any]]:
    """`(index, av.VideoFrame)` for every frame of the first video stream, flushing at the end."""
    stream = container.streams.video[0]
    index = 0
    budget = _ErrorBudget(strict)
    while True:
        try:
            # demux() reads on from where an earlier read error stopped it.
            for packet in container.demux(stream):
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError as e:
                    budget.spend(e, index)
                    continue
                budget.in_a_row = 0
                for frame in frames:
                    yield index, frame
                    index += 1
            return
        except av.error.FFmpegError as e:
            budget.spend(e, index)
