"""Decodes a local video or image file into numbered RGB frames.

A frame's number is its position among the decoded frames, counted from 0 in
presentation order. Frame names in the pool are built from it, so the same
file must always give the same number for the same picture: we never seek and
never drop frames, we just count what the decoder hands out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from datapool import media_types
from datapool.errors import FailedPrecondition

Frame = NDArray[np.uint8]
"""H x W x 3 RGB."""


class UndecodableFile(FailedPrecondition):
    """The file is not a video/image we can decode; `reason` says why in a few words.

    A FailedPrecondition so that RPCs which cannot turn it into a `skipped`
    event (RenderFrames) still answer with a status a person can act on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video" or "image"
    frame_count_hint: int  # the container's claim; 0 when unknown
    width: int
    height: int
    fps: float
    codec: str


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


class FrameDecoder:
    """Opens a file and yields `(frame_index, rgb)` for every frame.

    `size=(width, height)` scales every frame inside the decoder's pixel-format
    conversion (swscale), much cheaper than resizing full frames afterwards;
    `size=None` keeps full resolution. Use as a context manager, or call close().
    Raises UndecodableFile on open, or while iterating when decoding fails.
    """

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None) -> None:
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
        self.info = self._open_image() if kind == "image" else self._open_video()
        self.decode_seconds += time.perf_counter() - started

    def _open_video(self) -> MediaInfo:
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as e:
            raise UndecodableFile(f"corrupt: {_ffmpeg_reason(e)}") from None
        if not self._container.streams.video:
            self.close()
            raise UndecodableFile("not a video: no video stream")
        stream = self._container.streams.video[0]
        # Frame threading reorders work, not output: frames still come out in order.
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        return MediaInfo(
            kind="video",
            frame_count_hint=max(int(stream.frames or 0), 0),
            width=int(stream.codec_context.width or 0),
            height=int(stream.codec_context.height or 0),
            fps=float(rate) if rate else 0.0,
            codec=str(stream.codec_context.name or ""),
        )

    def _open_image(self) -> MediaInfo:
        try:
            image = Image.open(self.path)
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise UndecodableFile(f"corrupt: not a readable image ({e.__class__.__name__})") from None
        self._image = image
        return MediaInfo(
            kind="image",
            frame_count_hint=1,
            width=image.width,
            height=image.height,
            fps=0.0,
            codec=(image.format or "").lower(),
        )

    def frames(self, only: AbstractSet[int] | None = None) -> Iterator[tuple[int, Frame]]:
        """Every frame once, in presentation order. Call once per decoder.

        `only` yields just those indices; the others are still decoded (numbering
        needs them) but skip the costly conversion to RGB.
        """
        if self._image is not None:
            self.frames_decoded = 1
            if only is None or 0 in only:
                yield 0, self._image_frame(self._image)
            return
        yield from self._video_frames(only)

    def _image_frame(self, image: Image.Image) -> Frame:
        started = time.perf_counter()
        rgb = image.convert("RGB")
        if self.size is not None and rgb.size != self.size:
            rgb = rgb.resize(self.size, Image.Resampling.BILINEAR)
        array = np.asarray(rgb, dtype=np.uint8)
        self.decode_seconds += time.perf_counter() - started
        return array

    def _video_frames(self, only: AbstractSet[int] | None) -> Iterator[tuple[int, Frame]]:
        container = self._container
        if container is None:
            raise RuntimeError("FrameDecoder is closed")
        stream = container.streams.video[0]
        width, height = self.size if self.size is not None else (None, None)
        index = 0
        decoded = container.decode(stream)
        while True:
            started = time.perf_counter()
            try:
                frame = next(decoded, None)
                if frame is None:
                    break
                wanted = only is None or index in only
                rgb = frame.to_ndarray(width=width, height=height, format="rgb24") if wanted else None
            except av.error.FFmpegError as e:
                raise UndecodableFile(f"decode error at frame {index}: {_ffmpeg_reason(e)}") from None
            finally:
                self.decode_seconds += time.perf_counter() - started
            self.frames_decoded = index + 1
            if rgb is not None:
                yield index, rgb
            index += 1
        if index == 0:
            raise UndecodableFile("no frames: the video stream decodes to nothing")

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
