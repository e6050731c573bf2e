"""Renders chosen frames of one file as full-resolution images: the core of RenderFrames.

Fast where it can be: a video decodes only the GOPs that hold the frames (gop_plan,
span_decode), and frames are encoded on several threads while the next ones decode. Where the
packets cannot be trusted to number the frames, or a GOP does not decode as planned, the rest
of the frames come from a decode from the first frame, as the embedder numbered them.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import av.error

from datapool.errors import InvalidArgument
from services.embedder.decode import Frame, FrameDecoder, UndecodableFile, media_kind, open_video
from services.embedder.frame_encoding import PNG, ImageFormat, PngStream
from services.embedder.gop_plan import plan, read_index
from services.embedder.span_decode import SpanMismatch, decode_spans

log = logging.getLogger(__name__)

# Encoder threads (FFmpeg's for PNG, a pool for Pillow's JPEG; neither holds the GIL while it
# compresses): they use the cores the decoder leaves.
ENCODE_THREADS = min(8, max(2, os.cpu_count() or 2))
# JPEG: decoded frames waiting for an encoder, to bound memory (a 4K RGB frame is 25 MB).
MAX_WAITING = 2 * ENCODE_THREADS


def render_frames(
    path: str | Path,
    frame_indices: Iterable[int],
    image_format: ImageFormat = PNG,
    frame_count: int | None = None,
) -> Iterator[tuple[int, bytes]]:
    """`(frame_index, image bytes)` once for each distinct requested index, in decode order
    (increasing for ordinary files).

    `frame_count`: the frames the file decoded to when it was embedded, when known; seeking is
    used only where the packets agree with it (without it, decoding starts at the first frame).
    Raises InvalidArgument naming an index the file does not have, UndecodableFile if the file
    cannot be decoded.
    """
    wanted = sorted(set(frame_indices))
    if not wanted:
        return
    if wanted[0] < 0:
        raise InvalidArgument(f"frame_indices: {wanted[0]} is negative")
    frames = _decoded(Path(path), wanted, frame_count)
    if image_format.name == "png":
        png = PngStream(ENCODE_THREADS)
        for index, frame in frames:
            yield from png.push(index, frame)
        yield from png.finish()
        return
    waiting: deque[tuple[int, Future[bytes]]] = deque()
    with ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="render-encode") as pool:
        for index, frame in frames:
            waiting.append((index, pool.submit(image_format.encode_jpg, frame)))
            while len(waiting) > MAX_WAITING:
                done, future = waiting.popleft()
                yield done, future.result()
        while waiting:
            done, future = waiting.popleft()
            yield done, future.result()


def _decoded(path: Path, wanted: list[int], frame_count: int | None) -> Iterator[tuple[int, Frame]]:
    given: set[int] = set()
    if media_kind(path) == "video":
        try:
            for index, frame in _seeking(path, wanted, frame_count):
                given.add(index)
                yield index, frame
        except (SpanMismatch, UndecodableFile, av.error.FFmpegError) as e:
            log.info("%s: %s; decoding the other frames from the first", path.name, e)
    rest = [i for i in wanted if i not in given]
    if rest:
        yield from _from_the_start(path, rest)


def _seeking(path: Path, wanted: list[int], frame_count: int | None) -> Iterator[tuple[int, Frame]]:
    """The frames through GOP seeks; nothing at all when the packets cannot number them."""
    container = open_video(path)
    try:
        index = read_index(container)
        spans = plan(index, wanted, frame_count) if index is not None else None
        if index is None or spans is None:
            log.info("%s: packets do not number the frames; decoding from the first", path.name)
            return
        yield from decode_spans(container, index, spans)
    finally:
        container.close()


def _from_the_start(path: Path, wanted: list[int]) -> Iterator[tuple[int, Frame]]:
    """Decodes sequentially from the start (frame numbers are decode positions) and stops
    after the last wanted frame."""
    last = wanted[-1]
    with FrameDecoder(path, size=None) as decoder:
        for index, frame in decoder.frames(only=frozenset(wanted)):
            yield index, frame
            if index == last:
                return
        frame_count = decoder.frames_decoded
    missing = next(i for i in wanted if i >= frame_count)
    raise InvalidArgument(
        f"frame_indices: frame {missing} is beyond the end of the file ({frame_count} frames)"
    )
