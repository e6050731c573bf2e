"""Decodes only the GOPs of a video that hold chosen frames (see gop_plan), seeking to each.

Uses the decoder settings of FrameDecoder's fast pass, so each frame comes out with the same
pixels as in a decode from the first frame (packets a span skips are ones no frame refers to).
Every frame out is checked against the packets it was fed; any difference raises SpanMismatch
and the caller decodes from the start.

Spans are decoded on a few threads at once, each with a decoder of its own (a span starts at
a keyframe, so it needs nothing decoded before it): H.264 frame threads only half fill two
cores on a clip whose every frame refers to the one before (no B-frames), and PyAV releases
the GIL while FFmpeg decodes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.embedder.decode import Frame, open_video
from services.embedder.gop_plan import PacketIndex, Span
from services.embedder.orientation import Orientation, orientation_of

# Spans decoded at once. A constant, not the CPU count: not for the pixels (each span's decoder
# starts afresh at its keyframe, whatever the count) but to keep a render's threads bounded.
# On 2 cores the flat clip of bench/bench_render.py renders fastest with 3.
DECODE_WORKERS = 3
# Decoded frames handed over and not yet taken (a 4K RGB frame is 25 MB).
MAX_HANDED = 8


def decode_spans_on_threads(path: Path, index: PacketIndex, spans: list[Span]) -> Iterator[tuple[int, Frame]]:
    """`(frame_index, rgb)` for every wanted frame of `spans`, each span's in presentation
    order, spans interleaved as their threads decode them. Raises the first error a thread
    met (SpanMismatch, or PyAV's): the frames given before it are right."""
    todo = deque(spans)
    handed: queue.Queue[tuple[int, Frame] | BaseException | None] = queue.Queue(MAX_HANDED)
    stop = threading.Event()

    def hand(item: tuple[int, Frame] | BaseException | None) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                handed.put(item, timeout=0.1)
                return True
        return False

    def work() -> None:
        try:
            with contextlib.closing(open_video(path)) as container:
                while not stop.is_set():
                    try:
                        span = todo.popleft()  # atomic: each span goes to one thread
                    except IndexError:
                        return
                    for frame in decode_spans(container, index, [span]):
                        if not hand(frame):
                            return
        except BaseException as e:  # handed to the caller's thread, which raises it
            hand(e)
        finally:
            hand(None)

    workers = min(DECODE_WORKERS, len(spans))
    threads = [threading.Thread(target=work, name="render-decode") for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = handed.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()  # the threads stop at their next frame, even when the caller stopped early
        for thread in threads:
            thread.join()


class SpanMismatch(Exception):
    """The file did not decode the way its packets said it would."""


def decode_spans(container: Any, index: PacketIndex, spans: list[Span]) -> Iterator[tuple[int, Frame]]:
    """`(frame_index, rgb)` for every wanted frame of `spans`, span by span, in presentation order."""
    stream = container.streams.video[0]
    orientation: list[Orientation] = []
    for span in spans:
        expected = frozenset(index.pts[i] for i in span.fed())
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
    """The decoder's frames for packets [span.start, span.end) but those in span.skip, then
    drained and reset."""
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
            if position not in span.skip:
                yield from stream.decode(packet)
            position += 1
            if position == span.end:
                break
    if position is None:
        raise SpanMismatch(f"seeking to pts {span.start_pts} found no such keyframe")
    yield from stream.decode(None)
    # Draining ends the decoder's stream; the next span starts a new one.
    stream.codec_context.flush_buffers()
