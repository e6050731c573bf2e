"""Which stretches of a video to decode to reach chosen frames: the GOPs that hold them.

A frame's number is its position among the decoded frames in presentation order (decode.py).
Reading the packets without decoding them gives every frame's pts: when each packet is one
frame, frame n is the packet with the n-th smallest pts, so decoding can start at the keyframe
before a frame instead of at the first frame. Whatever could break that (a packet without pts,
two packets with one pts, a first packet that is not a keyframe, a packet count other than the
frame count the embedding found, or no such count) makes `plan` return None, and the caller
decodes from the start.

Within a GOP, decoding stops at the last wanted frame's packet (in decode order every frame
comes after the frames it refers to), and H.264 packets no frame refers to are skipped unless
wanted (nal_refs): with x264's defaults that is about half of the frames.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.embedder.nal_refs import is_unreferenced, length_size


@dataclass(frozen=True)
class PacketIndex:
    """The video stream's packets in decode order: their pts, and where the keyframes are."""

    pts: list[int]
    keyframes: list[int]  # positions in `pts`, increasing
    unreferenced: list[int] = field(default_factory=list)  # positions no frame refers to, increasing


@dataclass
class Span:
    """Decode packets [start, end) from a keyframe, except those at positions in `skip`; keep
    the frames whose pts `wanted` maps to an index."""

    start: int
    end: int
    wanted: dict[int, int] = field(default_factory=dict)
    start_pts: int = 0
    skip: frozenset[int] = frozenset()

    def fed(self) -> list[int]:
        """The positions of the packets the decoder is given."""
        return [i for i in range(self.start, self.end) if i not in self.skip]


def read_index(container: Any) -> PacketIndex | None:
    """Demuxes (does not decode) the first video stream; None where a packet has no pts, or is
    flagged discarded or corrupt."""
    stream = container.streams.video[0]
    pts: list[int] = []
    keyframes: list[int] = []
    unreferenced: list[int] = []
    h264 = stream.codec_context.name == "h264"
    size = length_size(stream) if h264 else None
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        if packet.pts is None or packet.is_discard or packet.is_corrupt:
            # Discarded packets (an MP4 edit list's) decode to no frame; corrupt ones may not.
            return None
        if packet.is_keyframe:
            keyframes.append(len(pts))
        elif h264 and is_unreferenced(bytes(packet), size):
            unreferenced.append(len(pts))
        pts.append(int(packet.pts))
    return PacketIndex(pts, keyframes, unreferenced)


def plan(index: PacketIndex, frames: Sequence[int], frame_count: int | None) -> list[Span] | None:
    """The spans to decode for `frames` (distinct, sorted, >= 0), merged where they overlap (an
    open GOP's span starts in the GOP before). Spans that only meet stay apart: they decode on
    threads of their own (span_decode).

    `frame_count` is the number of frames the embedder decoded the file to; without it (None)
    the packets are not trusted at all.
    None when the packets cannot be trusted to number the frames: see the module's docstring.
    A frame past the last packet is left to the caller's full decode too, which names it.
    """
    pts, keys = index.pts, index.keyframes
    if not keys or keys[0] != 0 or len(set(pts)) != len(pts) or min(pts) != pts[0]:
        return None
    if frame_count != len(pts):
        return None
    if frames and frames[-1] >= len(pts):
        return None
    ordered = sorted(pts)
    position = {p: i for i, p in enumerate(pts)}
    bounds = [*keys, len(pts)]
    # GOPs whose keyframe is shown after some of their frames (open GOPs). Those leading
    # frames refer to the GOP before, and the decoder, made to stop at errors as in the
    # embedder's fast pass, stops at them: a span never starts at such a GOP.
    leading = [min(pts[a:b]) < pts[a] for a, b in itertools.pairwise(bounds)]
    needs: list[tuple[int, int, int, int]] = []
    for frame in frames:
        p = ordered[frame]
        gop = bisect.bisect_right(keys, position[p]) - 1
        first = gop
        while first > 0 and leading[first]:
            first -= 1
        needs.append((keys[first], position[p] + 1, p, frame))
    spans: list[Span] = []
    for start, end, p, frame in sorted(needs):
        if spans and start < spans[-1].end:
            spans[-1].end = max(spans[-1].end, end)
        else:
            spans.append(Span(start, end, start_pts=pts[start]))
        spans[-1].wanted[p] = frame
    unreferenced = index.unreferenced
    for span in spans:
        first, end = (bisect.bisect_left(unreferenced, at) for at in (span.start, span.end))
        span.skip = frozenset(i for i in unreferenced[first:end] if pts[i] not in span.wanted)
    return spans
