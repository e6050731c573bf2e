"""Odd videos for the decoder tests, generated with PyAV and deterministic from their arguments.

Variable frame rate, display rotation (with mirroring), 10-bit, odd and extreme
sizes, and a stream with a damaged packet in the middle, in several containers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from datapool.samples import Scene

# One encoder thread and no SIMD in x264, as datapool.samples does: same input, same bytes.
_X264 = {"preset": "veryfast", "x264-params": "threads=1:lookahead-threads=1:no-asm=1"}
_VPX = {"deadline": "realtime", "cpu-used": "8"}
_X265 = {"preset": "ultrafast", "x265-params": "log-level=none:pools=none:frame-threads=1"}


@dataclass(frozen=True)
class OddVideo:
    """How to write one odd video; `write` returns the path and the pictures that went in."""

    name: str  # file name, extension included
    size: tuple[int, int] = (96, 64)  # width, height as encoded
    n_frames: int = 12
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    # Presentation times in 1/1000 s, one per frame; None: a constant 10 frames/s.
    pts_ms: Sequence[int] | None = None
    # Display matrix as `set_display_rotation` takes it: counter-clockwise degrees, then mirrors.
    rotation: tuple[int, bool, bool] | None = None
    # Bytes overwritten with noise, as fractions of the file length.
    damage_at: Sequence[float] = field(default_factory=tuple)
    seed: int = 5
    crf: int = 20  # x264 quality; 0 is lossless

    def pictures(self) -> list[NDArray[np.uint8]]:
        scene = Scene(self.seed, self.size)
        return [scene.frame(3 * t) for t in range(self.n_frames)]

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        time_base = Fraction(1, 1000) if self.pts_ms is not None else Fraction(1, 10)
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream(self.codec, rate=Fraction(10))
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height = self.size
            stream.pix_fmt = self.pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            stream.codec_context.thread_count = 1
            if self.codec == "libx264":
                stream.codec_context.options = {**_X264, "crf": str(self.crf)}
            elif self.codec == "libx265":
                stream.codec_context.options = dict(_X265)
            elif self.codec.startswith("libvpx"):
                stream.codec_context.options = dict(_VPX)
            if self.rotation is not None:
                degrees, hflip, vflip = self.rotation
                stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
            for t, picture in enumerate(self.pictures()):
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts = self.pts_ms[t] if self.pts_ms is not None else t
                frame.time_base = time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        if self.damage_at:
            data = bytearray(path.read_bytes())
            rng = np.random.default_rng(self.seed)
            for at in self.damage_at:
                start = int(len(data) * at)
                data[start : start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
            path.write_bytes(bytes(data))
        return path


def upright(picture: NDArray[np.uint8], rotation: tuple[int, bool, bool] | None) -> NDArray[np.uint8]:
    """What a player shows for `picture` under `rotation`: turn counter-clockwise, then mirror."""
    if rotation is None:
        return picture
    degrees, hflip, vflip = rotation
    out = np.rot90(picture, k=degrees // 90)
    if hflip:
        out = out[:, ::-1]
    if vflip:
        out = out[::-1]
    return np.ascontiguousarray(out)


# Bursts and gaps: 10 frames 10 ms apart, then one frame a second, then 30 frames/s for 1 s.
VFR_PTS_MS = [*range(0, 100, 10), 1000, 2000, 3000, *range(3033, 3033 + 30 * 33, 33)]

ODD_VIDEOS: list[OddVideo] = [
    OddVideo("vfr.mp4", n_frames=len(VFR_PTS_MS), pts_ms=VFR_PTS_MS),
    OddVideo("vfr.mkv", n_frames=len(VFR_PTS_MS), pts_ms=VFR_PTS_MS),
    OddVideo("rot90.mp4", rotation=(90, False, False)),
    OddVideo("rot270.mov", rotation=(-90, False, False)),
    OddVideo("rot180.mkv", rotation=(180, False, False)),
    OddVideo("rot90-mirrored.mp4", rotation=(90, True, False)),
    OddVideo("mirrored.mp4", rotation=(0, True, False)),
    OddVideo("h264-10bit.mp4", pix_fmt="yuv420p10le"),
    OddVideo("hevc-10bit.mkv", size=(128, 96), codec="libx265", pix_fmt="yuv420p10le"),
    OddVideo("odd-444.mp4", size=(97, 63), pix_fmt="yuv444p"),
    OddVideo("odd-420.avi", size=(97, 63), codec="mpeg4"),
    # 2x2 pictures survive 4:2:0 and lossy coding too poorly to tell frames apart.
    OddVideo("tiny.mp4", size=(2, 2), pix_fmt="yuv444p", crf=0),
    OddVideo("wide.mkv", size=(4000, 8), n_frames=6),
    OddVideo("tall.mp4", size=(16, 1000), n_frames=6),
    OddVideo("damaged.mp4", size=(320, 240), n_frames=40, damage_at=(0.5,)),
    OddVideo("damaged.mkv", size=(320, 240), n_frames=40, damage_at=(0.5,)),
    OddVideo("damaged-vp9.webm", size=(320, 240), n_frames=40, codec="libvpx-vp9", damage_at=(0.7,)),
    OddVideo("damaged-10bit.mp4", size=(320, 240), n_frames=40, pix_fmt="yuv420p10le", damage_at=(0.7,)),
]
