"""Sample media for the demo and the tests, generated with PyAV, deterministic from a seed.

A "scene" is a textured, two-colour gradient background with a few shapes that
drift slowly: consecutive frames are near duplicates, while different seeds
differ in palette, texture and shapes, so they land far apart in embedding space.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from datapool import media_types

CorruptKind = Literal["random", "truncated", "empty", "no_video"]
CORRUPT_KINDS: tuple[CorruptKind, ...] = ("random", "truncated", "empty", "no_video")


@dataclass(frozen=True)
class _Shape:
    kind: int  # 0 disc, 1 box
    colour: NDArray[np.float32]
    radius: float  # in pixels
    x: float  # centre at frame 0, in pixels
    y: float
    vx: float  # pixels per frame
    vy: float


class Scene:
    """Renders frame `t` of the scene seeded by `seed` at `size` (width, height)."""

    def __init__(self, seed: int, size: tuple[int, int]) -> None:
        width, height = size
        rng = np.random.default_rng(seed)
        self.size = size
        self.colours = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        self.gradient_angle = rng.uniform(0, 2 * np.pi)
        self.stripe_angle = rng.uniform(0, np.pi)
        self.stripe_period = rng.uniform(0.08, 0.5) * max(width, height)
        self.stripe_strength = rng.uniform(20, 70)
        self.drift = rng.uniform(0.02, 0.08)  # stripe phase change per frame, in periods
        scale = min(width, height)
        self.shapes = [
            _Shape(
                kind=int(rng.integers(0, 2)),
                colour=rng.uniform(0, 255, size=3).astype(np.float32),
                radius=float(rng.uniform(0.08, 0.25) * scale),
                x=float(rng.uniform(0, width)),
                y=float(rng.uniform(0, height)),
                vx=float(rng.uniform(-0.01, 0.01) * width),
                vy=float(rng.uniform(-0.01, 0.01) * height),
            )
            for _ in range(int(rng.integers(2, 6)))
        ]
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self._xs, self._ys = xs, ys
        u = (xs * np.cos(self.gradient_angle) + ys * np.sin(self.gradient_angle)) / max(width, height)
        u = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
        self._background = (self.colours[0] * (1 - u[..., None]) + self.colours[1] * u[..., None]).astype(
            np.float32
        )
        stripe = (
            2 * np.pi * (xs * np.cos(self.stripe_angle) + ys * np.sin(self.stripe_angle)) / self.stripe_period
        )
        # sin(a + wt) = sin(a)cos(wt) + cos(a)sin(wt): two planes per scene, no per-frame sin.
        self._stripe_sin = (self.stripe_strength * np.sin(stripe))[..., None].astype(np.float32)
        self._stripe_cos = (self.stripe_strength * np.cos(stripe))[..., None].astype(np.float32)

    def frame(self, t: int) -> NDArray[np.uint8]:
        width, height = self.size
        wt = 2 * np.pi * self.drift * t
        image = self._background + self._stripe_sin * np.cos(wt) + self._stripe_cos * np.sin(wt)
        for shape in self.shapes:
            # Wrap around the edges so shapes never pile up in a corner.
            cx = (shape.x + shape.vx * t) % width
            cy = (shape.y + shape.vy * t) % height
            # Only the shape's bounding box is touched: 720p frames stay cheap.
            x0, x1 = max(int(cx - shape.radius), 0), min(int(cx + shape.radius) + 1, width)
            y0, y1 = max(int(cy - shape.radius), 0), min(int(cy + shape.radius) + 1, height)
            dx = np.abs(self._xs[y0:y1, x0:x1] - cx)
            dy = np.abs(self._ys[y0:y1, x0:x1] - cy)
            inside = (
                (dx * dx + dy * dy <= shape.radius**2)
                if shape.kind == 0
                else np.maximum(dx, dy) <= shape.radius
            )
            image[y0:y1, x0:x1][inside] = shape.colour
        frame: NDArray[np.uint8] = np.clip(image, 0, 255).astype(np.uint8)
        return frame


def video_codec_for(path: str | Path) -> str:
    """The encoder used for a container, by extension: H.264 where the wheel has libx264."""
    suffix = Path(path).suffix.lower()
    available = av.codecs_available
    if suffix == ".webm":
        return "libvpx" if "libvpx" in available else "libvpx-vp9"
    if suffix in (".mpg", ".mpeg"):
        return "mpeg2video"
    if suffix == ".avi":
        return "mpeg4"
    return "libx264" if "libx264" in available else "mpeg4"


def make_video(
    path: str | Path,
    scene_seed: int,
    n_frames: int = 30,
    size: tuple[int, int] = (96, 64),
    fps: int = 10,
    codec: str | None = None,
) -> Path:
    """Writes `n_frames` of scene `scene_seed` to `path`; the container follows the extension.

    `size` is (width, height) and must be even (4:2:0 chroma). Image extensions
    write frame 0 as a still image instead.
    """
    path = Path(path)
    width, height = size
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ValueError(f"size must be positive and even, got {size}")
    if media_types.is_image(path.as_posix()):
        return make_image(path, scene_seed, size)
    scene = Scene(scene_seed, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or video_codec_for(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # One encoder thread, so the same seed gives the same pictures (and, for mp4/avi, the
        # same bytes). libx264 takes its thread settings only through its own params, and its
        # SIMD code made small frames (96x64) differ from run to run: no-asm costs ~20 ms per
        # small clip (4x slower at 720p) and buys reproducible test data.
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.codec_context.options = {
                "preset": "veryfast",
                "crf": "20",
                "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0:no-asm=1",
            }
        elif codec.startswith("libvpx"):
            # libvpx's default "good" deadline takes ~10x longer for no benefit here.
            stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        for t in range(n_frames):
            frame = av.VideoFrame.from_ndarray(scene.frame(t), format="rgb24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_image(path: str | Path, scene_seed: int, size: tuple[int, int] = (96, 64)) -> Path:
    """Frame 0 of a scene as a still image, the format following the extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(Scene(scene_seed, size).frame(0), mode="RGB").save(path)
    return path


def _audio_only(path: Path) -> None:
    codec = "pcm_s16le" if path.suffix.lower() == ".avi" else "aac"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=8000, layout="mono")
        assert isinstance(stream, av.AudioStream)
        fmt = stream.codec_context.format.name
        t = np.arange(4096, dtype=np.float32) / 8000
        tone = 0.3 * np.sin(2 * np.pi * 440 * t)
        samples = (tone * 32767).astype(np.int16) if fmt == "s16" else tone.astype(np.float32)
        for i in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, i : i + 1024], format=fmt, layout="mono")
            frame.sample_rate = 8000
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def make_corrupt_file(path: str | Path, kind: CorruptKind = "random", seed: int = 0) -> Path:
    """A file with a media extension that the embedder must refuse (or, for a
    truncated non-mp4 container, decode only partly).

    random: random bytes. truncated: the first 40% of a valid video (mp4 keeps
    its index at the end, so a truncated mp4 cannot be opened at all).
    empty: zero bytes. no_video: a valid container holding only audio.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "random":
        path.write_bytes(np.random.default_rng(seed).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        make_video(path, scene_seed=seed)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.4)])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "no_video":
        _audio_only(path)
    else:
        raise ValueError(f"unknown corrupt kind {kind!r}; known: {', '.join(CORRUPT_KINDS)}")
    return path


def sample_name(index: int, cameras_per_campus: int = 4, suffix: str = ".mp4") -> str:
    """`campus{k}-c{c}.mp4`: the naming the demo buckets use."""
    return f"campus{index // cameras_per_campus}-c{index % cameras_per_campus}{suffix}"


def make_sample_bucket(
    root: str | Path,
    n_videos: int,
    n_frames: int = 30,
    size: tuple[int, int] = (96, 64),
    fps: int = 10,
    first_seed: int = 0,
) -> list[Path]:
    """`n_videos` videos of distinct scenes (seeds first_seed, first_seed+1, ...) under `root`."""
    root = Path(root)
    return [
        make_video(root / sample_name(i), scene_seed=first_seed + i, n_frames=n_frames, size=size, fps=fps)
        for i in range(n_videos)
    ]
