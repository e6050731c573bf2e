"""Decodes a local video or image file into numbered RGB frames, upright.

A frame's number is its position among the decoded frames, counted from 0 in
presentation order. Frame names in the pool are built from it, so the same
file must always give the same number for the same picture, on any machine:
we never seek and never drop frames, we count what the decoder hands out, and
the decoder settings that could change what it hands out are fixed here.
(RenderFrames does seek, to frames numbered this way: see render.py.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from datapool import media_types
from datapool.errors import FailedPrecondition
from datapool.sampling import Sampling
from services.embedder.hwdecode import cuda_present, open_on_gpu
from services.embedder.orientation import Orientation, orientation_of
from services.embedder.packets import TooManyErrors, numbered_frames
from services.embedder.sampling import FramePicker

log = logging.getLogger(__name__)

Frame = NDArray[np.uint8]
"""H x W x 3 RGB."""

# The fast pass decodes with frame threads (or the GPU) and stops at the first error the
# decoder detects ("explode"); the careful pass then decodes the whole file again in one
# thread, concealing damage. What FFmpeg makes of a damaged stream depends on its threads,
# so damage the decoder detects decodes the same whatever the threads or the GPU. Damage
# it decodes without noticing still gets thread-dependent pixels (not numbers), so the
# count is a constant, never the CPU count: a file embedded on one replica must render
# the same on another. Frame threads beat slice threads and one thread on a 720p H.264
# clip (bench/bench_decode_threads.py; 2, 4 and 8 were within noise on 2 cores).
# PyAV's Python log callback must stay off (its default): with it, a frame thread logging
# an error waits for the GIL while close() holds it and waits for that thread (PyAV #909).
THREAD_COUNT = 4
# Part of every embedding cache scope (numbering_key): bump it whenever frame numbering or
# the decoded pictures can change for the same file and PyAV/FFmpeg versions: THREAD_COUNT,
# the careful-pass rules, frame conversion. PyAV and FFmpeg upgrades change the key anyway.
NUMBERING_VERSION = "1"


def numbering_key() -> str:
    """Names how this install numbers and decodes frames: cached vectors of one never serve another."""
    return f"numbering={NUMBERING_VERSION};pyav={av.__version__};ffmpeg={av.ffmpeg_version_info}"


class UndecodableFile(FailedPrecondition):
    """The file is not a video/image we can decode; `reason` says why in a few words.

    A FailedPrecondition so that RPCs which cannot turn it into a `skipped`
    event (RenderFrames) still answer with a status a person can act on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stopped(Exception):
    """Decoding ended early because the `stop` event given to frames() was set."""


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video" or "image"
    frame_count_hint: int  # the container's claim; 0 when unknown
    width: int  # as stored: a video's display rotation is applied per frame
    height: int
    fps: float
    codec: str
    decoder: str = ""  # what decodes it: the codec, "(cuda)" when on the GPU


def media_kind(path: str | Path) -> str | None:
    """ "video", "image", or None for a file type we do not decode, by extension."""
    name = Path(path).as_posix()
    if media_types.is_video(name):
        return "video"
    if media_types.is_image(name):
        return "image"
    return None


def _ffmpeg_reason(e: av.error.FFmpegError) -> str:
    # strerror is FFmpeg's sentence without the file name, which the caller already knows.
    text = str(getattr(e, "strerror", None) or e)
    return text[:1].lower() + text[1:]


def _open(path: Path, fast: bool) -> Any:
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        raise UndecodableFile(f"corrupt: {_ffmpeg_reason(e)}") from None
    if not container.streams.video:
        container.close()
        raise UndecodableFile("not a video: no video stream")
    _configure(container, fast)
    return container


def open_video(path: str | Path) -> Any:
    """The video with the fast pass's decoder settings (frame threads, errors raised), for
    RenderFrames' seeking decode: it must give the same pixels as the fast pass."""
    return _open(Path(path), fast=True)


def _configure(container: Any, fast: bool) -> None:
    context = container.streams.video[0].codec_context
    if fast:
        context.thread_type = "FRAME"
        context.thread_count = THREAD_COUNT
        context.options = {"err_detect": "explode"}
    else:
        context.thread_type = "NONE"
        context.thread_count = 1


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Stopped


class FrameDecoder:
    """Opens a file and yields `(frame_index, rgb)` for every frame, shown upright.

    `size=(width, height)` scales every frame inside the decoder's pixel-format
    conversion (swscale), much cheaper than resizing full frames afterwards;
    `size=None` keeps full resolution. `gpu`: decode H.264/HEVC on a CUDA GPU;
    None tries it when one is present and falls back to software (see hwdecode).
    Use as a context manager, or call close(). Raises UndecodableFile on open, or
    while iterating when decoding fails.
    """

    def __init__(
        self, path: str | Path, size: tuple[int, int] | None = None, gpu: bool | None = None
    ) -> None:
        self.path = Path(path)
        self.size = size
        self.decode_seconds = 0.0
        self.frames_decoded = 0
        self._container: Any = None
        self._image: Image.Image | None = None
        kind = media_kind(self.path)
        if kind is None:
            raise UndecodableFile(f"not a video or image: unsupported extension {self.path.suffix!r}")
        try:
            if self.path.stat().st_size == 0:
                raise UndecodableFile("empty file")
        except FileNotFoundError:
            raise UndecodableFile("file not found") from None
        started = time.perf_counter()
        if kind == "image":
            self.info = self._open_image()
        else:
            self.info = self._open_video(cuda_present() if gpu is None else gpu)
        self.decode_seconds += time.perf_counter() - started

    def _open_video(self, gpu: bool) -> MediaInfo:
        self._container = _open(self.path, fast=True)
        stream = self._container.streams.video[0]
        codec = str(stream.codec_context.name or "")
        decoder = codec
        # Settled before the first frame: if the GPU decoder cannot be set up, software
        # decodes from the start and no frame number ever depends on which one ran.
        on_gpu = open_on_gpu(self.path, codec) if gpu else None
        if on_gpu is not None:
            self._container.close()
            self._container = on_gpu
            _configure(on_gpu, fast=True)
            decoder = f"{codec} (cuda)"
        # The container in use: the first one's streams are freed with it.
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        return MediaInfo(
            kind="video",
            frame_count_hint=max(int(stream.frames or 0), 0),
            width=int(stream.codec_context.width or 0),
            height=int(stream.codec_context.height or 0),
            fps=float(rate) if rate else 0.0,
            codec=codec,
            decoder=decoder,
        )

    def _open_image(self) -> MediaInfo:
        try:
            image = Image.open(self.path)
            image.load()
            codec = (image.format or "").lower()
            # Phone photos are often stored sideways with an EXIF orientation tag.
            ImageOps.exif_transpose(image, in_place=True)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise UndecodableFile(f"corrupt: not a readable image ({e.__class__.__name__})") from None
        self._image = image
        return MediaInfo(
            kind="image",
            frame_count_hint=1,
            width=image.width,
            height=image.height,
            fps=0.0,
            codec=codec,
            decoder=codec,
        )

    def frames(
        self,
        only: AbstractSet[int] | None = None,
        sampling: Sampling | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[tuple[int, Frame]]:
        """Every frame once, in presentation order. Call once per decoder.

        `only` and `sampling` yield just the frames they keep (both, when both are
        given); the others are still decoded and counted (numbering needs them) but
        skip the costly conversion to RGB. An image is frame 0, always kept.
        Once `stop` is set, the next decoded frame raises Stopped: with a sparse rule
        minutes of video can lie between two kept frames, and none of it is yielded.
        """
        if self._image is not None:
            self.frames_decoded = 1
            if only is None or 0 in only:
                yield 0, self._image_frame(self._image)
            return
        yield from self._video_frames(only, sampling, stop)

    def _image_frame(self, image: Image.Image) -> Frame:
        started = time.perf_counter()
        rgb = image.convert("RGB")
        if self.size is not None and rgb.size != self.size:
            rgb = rgb.resize(self.size, Image.Resampling.BILINEAR)
        array = np.asarray(rgb, dtype=np.uint8)
        self.decode_seconds += time.perf_counter() - started
        return array

    def _video_frames(
        self, only: AbstractSet[int] | None, sampling: Sampling | None, stop: threading.Event | None
    ) -> Iterator[tuple[int, Frame]]:
        if self._container is None:
            raise RuntimeError("FrameDecoder is closed")
        picker = (
            FramePicker(sampling, self.info.fps) if sampling is not None and not sampling.keeps_all else None
        )
        time_base: Fraction | None = self._container.streams.video[0].time_base
        decoded = self._decoded(stop)
        index = -1
        orientation: Orientation | None = None
        while True:
            started = time.perf_counter()
            try:
                item = next(decoded, None)
                if item is None:
                    break
                index, frame = item
                # The stream's display matrix is on every frame; reading it costs 0.2 ms, so
                # it is read once, as FFmpeg's own autorotation does.
                if orientation is None:
                    orientation = orientation_of(frame)
                # The picker sees every frame in order: target_fps depends on the ones before.
                sampled = picker is None or picker.keep(index, frame.pts, frame.time_base or time_base)
                wanted = sampled and (only is None or index in only)
                rgb = self._rgb(frame, orientation) if wanted else None
            except av.error.FFmpegError as e:
                raise UndecodableFile(f"decode error at frame {index}: {_ffmpeg_reason(e)}") from None
            finally:
                self.decode_seconds += time.perf_counter() - started
            self.frames_decoded = index + 1
            if rgb is not None:
                yield index, rgb
        if index < 0:
            raise UndecodableFile("no frames: the video stream decodes to nothing")

    def _rgb(self, frame: Any, orientation: Orientation) -> Frame:
        width, height = orientation.coded_size(self.size) if self.size is not None else (None, None)
        rgb: Frame = frame.to_ndarray(width=width, height=height, format="rgb24")
        return orientation.apply(rgb)

    def _decoded(self, stop: threading.Event | None) -> Iterator[tuple[int, Any]]:
        """Numbered frames from the fast decoder; after its first error, from a careful one.

        The careful pass (one software thread, broken packets skipped) starts again from
        the first frame and yields only the frames the fast one did not reach. The
        numbering stays the same as far as the fast pass went: both follow FFmpeg's own
        frame output, which does not differ between them on a stream without errors.
        """
        reached = 0
        try:
            for index, frame in numbered_frames(self._container, strict=True):
                _check(stop)
                reached = index + 1
                yield index, frame
            return
        except av.error.FFmpegError as e:
            reason = _ffmpeg_reason(e)
        log.info(
            "%s: %s after frame %d with %s; decoding again in one software thread",
            self.path.name,
            reason,
            reached,
            self.info.decoder,
        )
        self._container.close()
        self._container = _open(self.path, fast=False)
        try:
            for index, frame in numbered_frames(self._container, strict=False):
                _check(stop)
                if index >= reached:
                    yield index, frame
        except TooManyErrors as e:
            raise UndecodableFile(f"corrupt: {e}: {_ffmpeg_reason(e.last)}") from None

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._image is not None:
            self._image.close()
            self._image = None

    def __enter__(self) -> FrameDecoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
