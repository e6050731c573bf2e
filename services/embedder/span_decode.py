"""Decodes only the GOPs of a video that hold chosen frames (see gop_plan), seeking to each.

Uses the decoder settings of FrameDecoder's fast pass, so each frame comes out with the same
pixels as in a decode from the first frame. Every frame out is checked against the packets
it was planned from; any difference raises SpanMismatch and the caller decodes from the start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from services.embedder.decode import Frame
from services.embedder.gop_plan import PacketIndex, Span
from services.embedder.orientation import Orientation, orientation_of


class SpanMismatch(Exception):
    """The file did not decode the way its packets said it would."""


def decode_spans(container: Any, index: PacketIndex, spans: list[Span]) -> Iterator[tuple[int, Frame]]:
    """`(frame_index, rgb)` for every wanted frame of `spans`, span by span, in presentation order."""
    stream = container.streams.video[0]
    orientation: list[Orientation] = []
    for span in spans:
        expected = frozenset(index.pts[span.start : span.end])
        found: set[int] = set()
        last = -1
        container.seek(span.start_pts, backward=True, any_frame=False, stream=stream)
        for frame in _span_frames(container, stream, index, span):
            pts = frame.pts
            # Frames come out once each, in presentation order, with the pts of a packet fed.
            if pts is None or pts not in expected or (found and pts <= last):
                raise SpanMismatch(f"frame pts {pts} after {last} does not follow the packets")
            last = pts
            found.add(pts)
            wanted = span.wanted.get(pts)
            if wanted is not None:
                if not orientation:
                    orientation.append(orientation_of(frame))
                # What FrameDecoder does at full size: the same conversion, then upright.
                yield wanted, orientation[0].apply(frame.to_ndarray(format="rgb24"))
        missing = set(span.wanted) - found
        if missing:
            raise SpanMismatch(f"{len(missing)} wanted frames did not come out of their GOPs")


def _span_frames(container: Any, stream: Any, index: PacketIndex, span: Span) -> Iterator[Any]:
    """The decoder's frames for packets [span.start, span.end), then drained and reset."""
    position: int | None = None
    with contextlib.closing(container.demux(stream)) as packets:
        for packet in packets:
            if packet.size == 0:
                continue
            if position is None:
                # A seek lands on the keyframe at or before the one asked for.
                if packet.is_keyframe and packet.pts == span.start_pts:
                    position = span.start
                elif packet.is_keyframe and packet.pts is not None and packet.pts > span.start_pts:
                    raise SpanMismatch(f"seeking to pts {span.start_pts} went past it")
                else:
                    continue
            if packet.pts != index.pts[position]:
                raise SpanMismatch(f"packet {position} has pts {packet.pts}, not {index.pts[position]}")
            yield from stream.decode(packet)
            position += 1
            if position == span.end:
                break
    if position is None:
        raise SpanMismatch(f"seeking to pts {span.start_pts} found no such keyframe")
    yield from stream.decode(None)
    # Draining ends the decoder's stream; the next span starts a new one.
    stream.codec_context.flush_buffers()
