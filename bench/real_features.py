"""Measures the shape of real EfficientNet-Lite0 features of video, for the synthetic generators.

Renders short H.264 clips (PyAV, libx264) from the photographs scikit-image ships, with the
things real footage has: camera motion (a pan along a smoothly turning path, a slow zoom, a
small rotation, hand-held jitter), lighting drift (gain and gamma) and per-frame Gaussian
sensor noise. Each clip is then embedded with the path a run takes: `embed_file` (the
embedder servicer's decode + batch + embed core) with the onnxruntime-cpu backend, so the
vectors are exactly those the embedder sends. The statistics of `tests/embedding_stats.py`
are printed, and with ``--out`` saved as JSON together with how they were produced.

Two clips per photograph, with different motion: clips of one photograph are "the same
place seen again"; clips of different photographs are different scenes.

    .venv/bin/python bench/real_features.py --out bench/data/real_feature_stats.json

About 1,800 frames; 2-4 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import onnxruntime
import skimage.data
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The embedding statistics are test-support code (tests/embedding_stats.py), shared with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from embedding_stats import raw_statistics, summarise, table

from services.embedder.backends import BackendOptions, load_backend
from services.embedder.backends.base import ModelBackend
from services.embedder.embedding import FrameBatch, embed_file

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "coins",
    "moon",
    "clock",
    "brick",
    "grass",
    "gravel",
)
SIZE = (320, 240)  # (width, height) of the rendered clips
FPS = 30


@dataclass(frozen=True)
class Motion:
    """One clip's camera and light, per frame at FPS (drawn per clip from `draw_motion`)."""

    window: float  # crop width at frame 0, as a share of the photo's shorter side
    speed: float  # pan speed, crop widths per frame
    turn: float  # how fast the pan direction turns, radians per frame
    zoom: float  # log-scale change per frame
    spin: float  # rotation, degrees per frame
    jitter: float  # hand-held shake, crop widths (std of a smooth random offset)
    gain: float  # amplitude of the gain drift (1 +- gain)
    gamma: float  # amplitude of the gamma drift (1 +- gamma)
    light_period: float  # frames per lighting cycle
    noise: float  # sensor noise std, in 8-bit levels


def draw_motion(rng: np.random.Generator) -> Motion:
    # Ranges of ordinary hand-held and tripod footage at 30 fps: a pan crosses the frame in
    # 2-10 s, zoom at most ~6% a second, rotation at most ~3 degrees a second. Even the
    # slowest pan moves the picture by a fraction of a pixel a frame, which alone puts
    # consecutive frames ~0.13 apart (CNN features are not shift-invariant below their
    # stride); sensor noise and lighting drift add little (~0.01-0.03, measured).
    return Motion(
        window=float(rng.uniform(0.45, 0.7)),
        speed=float(rng.uniform(1 / 300, 1 / 60)),
        turn=float(rng.uniform(-0.03, 0.03)),
        zoom=float(rng.uniform(-0.002, 0.002)),
        spin=float(rng.uniform(-0.1, 0.1)),
        jitter=float(rng.uniform(0.001, 0.005)),
        gain=float(rng.uniform(0.05, 0.2)),
        gamma=float(rng.uniform(0.05, 0.15)),
        light_period=float(rng.uniform(60, 240)),
        noise=float(rng.uniform(2.0, 6.0)),
    )


def photo(name: str) -> U8:
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    rgb: U8 = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    return rgb


def render(image: U8, motion: Motion, frames: int, rng: np.random.Generator) -> list[U8]:
    """The clip's frames: an affine view of ``image`` per frame, then light and noise."""
    h, w = image.shape[:2]
    src = Image.fromarray(image)
    out_w, out_h = SIZE
    side = min(h, w)
    cx, cy = w / 2, h / 2
    heading = rng.uniform(0, 2 * math.pi)
    phase = rng.uniform(0, 2 * math.pi)
    shake = np.zeros(2)
    result = []
    for t in range(frames):
        scale = motion.window * side * math.exp(motion.zoom * t) / out_w  # photo px per output px
        crop_w = scale * out_w
        heading += motion.turn
        cx += motion.speed * crop_w * math.cos(heading)
        cy += motion.speed * crop_w * math.sin(heading)
        # Bounce off the photo's border so the view stays on the picture.
        half_w, half_h = crop_w / 2, scale * out_h / 2
        if not half_w <= cx <= w - half_w:
            heading = math.pi - heading
            cx = min(max(cx, half_w), w - half_w)
        if not half_h <= cy <= h - half_h:
            heading = -heading
            cy = min(max(cy, half_h), h - half_h)
        shake = 0.8 * shake + 0.6 * rng.standard_normal(2) * motion.jitter * crop_w
        angle = math.radians(motion.spin * t)
        cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
        ox, oy = cx + shake[0], cy + shake[1]
        # Output pixel (x, y) -> photo pixel, about the output's centre.
        a, b, d, e = cos, -sin, sin, cos
        c = ox - a * out_w / 2 - b * out_h / 2
        f = oy - d * out_w / 2 - e * out_h / 2
        view = src.transform(SIZE, Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR)
        x = np.asarray(view, dtype=np.float32) / 255.0
        light = 2 * math.pi * t / motion.light_period + phase
        gamma = 1.0 + motion.gamma * math.sin(light * 0.7)
        gain = 1.0 + motion.gain * math.sin(light)
        x = gain * np.power(x, gamma) * 255.0
        x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(motion.noise)
        result.append(np.clip(x, 0, 255).astype(np.uint8))
    return result


def encode(path: Path, frames: list[U8]) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "crf": "23"}
        for t, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def embed(path: Path, backend: ModelBackend) -> F32:
    batches = [e for e in embed_file(path, backend) if isinstance(e, FrameBatch)]
    indices = [i for b in batches for i in b.frame_indices]
    assert indices == list(range(len(indices))), "frames must come back in order"
    rows: F32 = np.concatenate([b.vectors for b in batches]).astype(np.float32)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=64, help="frames per clip")
    parser.add_argument("--clips", type=int, default=2, help="clips per photograph")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the statistics here as JSON")
    parser.add_argument("--save-rows", type=Path, help="also save the embeddings (.npz) here")
    args = parser.parse_args()

    t0 = time.perf_counter()
    backend = load_backend("onnxruntime-cpu", BackendOptions(threads=2))
    rng = np.random.default_rng(args.seed)
    rows: list[F32] = []
    clips: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in PHOTOS:
            image = photo(name)
            for k in range(args.clips):
                motion = draw_motion(rng)
                path = Path(tmp) / f"{name}-{k}.mp4"
                encode(path, render(image, motion, args.frames, rng))
                rows.append(embed(path, backend))
                clips.append({"photo": name, "clip": k, "frames": len(rows[-1]), "motion": asdict(motion)})
                print(f"  {name} clip {k}: {len(rows[-1])} frames", flush=True)
    x = np.concatenate(rows)
    lengths = [len(r) for r in rows]
    values = raw_statistics(x, lengths, seed=args.seed)
    # Same photograph, different clip: how far a revisit of a place lands.
    by_photo: dict[object, list[npt.NDArray[np.float64]]] = {}
    starts = np.cumsum([0, *lengths])
    for i, clip in enumerate(clips):
        by_photo.setdefault(clip["photo"], []).append(x[starts[i] : starts[i + 1]].mean(axis=0))
    same = [np.linalg.norm(m[0] - m[1]) for m in by_photo.values() if len(m) > 1]
    values["same_photo_means"] = np.asarray(same)
    stats = summarise(values)
    seconds = time.perf_counter() - t0
    print(f"{len(x)} frames from {len(lengths)} clips of {len(PHOTOS)} photographs in {seconds:.0f} s")
    print(table({"real (p5 / p50 / p95)": stats}))
    print(f"same photograph, two clips, distance of clip means: {stats['same_photo_means']}")
    if args.save_rows:
        np.savez_compressed(args.save_rows, rows=x, lengths=np.asarray(lengths))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "statistics": stats,
            "quantiles": [5, 50, 95],
            "frames": len(x),
            "clips": len(lengths),
            "how": {
                "command": "python bench/real_features.py " + " ".join(sys.argv[1:]),
                "model": backend.model_id,
                "backend": backend.name,
                "path": "services.embedder.embedding.embed_file (decode at 224x224 + onnxruntime-cpu)",
                "clip": f"{SIZE[0]}x{SIZE[1]} H.264 (libx264 crf 23) at {FPS} fps, {args.frames} frames",
                "photos": f"skimage.data ({', '.join(PHOTOS)}), {args.clips} clips each",
                "versions": {
                    "scikit-image": importlib.metadata.version("scikit-image"),
                    "av": av.__version__,
                    "onnxruntime": onnxruntime.__version__,
                    "python": platform.python_version(),
                },
                "seed": args.seed,
            },
            "clips_detail": clips,
        }
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
