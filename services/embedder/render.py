"""Renders chosen frames of one file as full-resolution images: the core of RenderFrames.

Fast where it can be: a video decodes only the GOPs that hold the frames, each up to its last
wanted frame and without the H.264 frames no frame refers to (gop_plan), several GOPs at once
(span_decode), and frames are encoded on several threads while the next ones decode. Where the
packets cannot be trusted to number the frames, or a GOP does not decode as planned, the rest
of the frames come from a decode from the first frame, as the embedder numbered them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import av.error

from datapool.errors import InvalidArgument
from services.embedder.decode import Frame, FrameDecoder, UndecodableFile, media_kind, open_video
from services.embedder.frame_encoding import PNG, ImageFormat
from services.embedder.gop_plan import plan, read_index
from services.embedder.span_decode import SpanMismatch, decode_spans_on_threads

log = logging.getLogger(__name__)

# Encoder threads (neither ISA-L for PNG nor Pillow for JPEG holds the GIL while it
# compresses): they use the cores the decoder leaves.
ENCODE_THREADS = min(8, max(2, os.cpu_count() or 2))
# Decoded frames waiting for an encoder, to bound memory (a 4K RGB frame is 25 MB).
MAX_WAITING = 2 * ENCODE_THREADS


def render_frames(
    path: str | Path,
    frame_indices: Iterable[int],
    image_format: ImageFormat = PNG,
    frame_count: int | None = None,
) -> Iterator[tuple[int, bytes]]:
    """`(frame_index, image bytes)` once for each distinct requested index: increasing within
    each GOP span, spans interleaved as their threads decode them (increasing where the file
    is decoded from the first frame).

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
    waiting: deque[tuple[int, Future[bytes]]] = deque()
    with ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="render-encode") as pool:
        for index, frame in frames:
            waiting.append((index, pool.submit(image_format.encode, frame)))
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
    with contextlib.closing(open_video(path)) as container:
        index = read_index(container)
    spans = plan(index, wanted, frame_count) if index is not None else None
    if index is None or spans is None:
        log.info("%s: packets do not number the frames; decoding from the first", path.name)
        return
    yield from decode_spans_on_threads(path, index, spans)


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
