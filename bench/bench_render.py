"""Render time (writing the picked frames) against embed time, measured in one process.

The case of issue 15: 720 frames of 720p H.264 with 100 picks. The clips are made once (PyAV,
libx264 veryfast, crf 23, B-frames) from photographs scikit-image ships: four scenes of 180
frames, each a slow pan and zoom over one photograph with sensor noise, and cached in the temp
folder. Three encodings of the same frames:
- `long`: x264's defaults (a keyframe at each scene cut and at most every 250 frames, 3
  B-frames in a pyramid): 4 GOPs of 180 frames, about half the frames referenced by none;
- `short`: a keyframe every 15 frames;
- `flat`: a keyframe every 250 frames, no B-frames, as many cameras write (every frame is a
  reference, so nothing can be skipped: the hard case, with `even` picks in all 3 GOPs).

- embed: `embed_file` (the embedder's decode + batch + model core) with the `auto` backend,
  warmed up, on the `long` clip.
- render (baseline): what RenderFrames did before issue 15, re-created here: decode from the
  first frame to the last pick, Pillow's PNG at zlib level 6, one frame after another.
- png / jpg 90: what RenderFrames runs now: `services.embedder.render.render_frames` with the
  frame count (as the scheduler asks), its images put into a local pool by the servicer's
  FrameWriter; jpg is worker_config.output_image_format jpg at jpg_quality 90.
Picks are `even` (100 frames spread over the clip) or `clustered` (4 runs of 25 neighbouring
frames). The share is render / (embed + render): the whole run also lists, selects and
commits, so the true share is lower. On a shared machine wall times swing with the load; CPU
seconds (all threads of the process) swing less.

`--png-levels` compares PNG encoders and levels (and JPEG) by time and size on 25 picks;
`--split` shows where a PNG render's CPU goes (demux, decode, RGB conversion, encode, writes);
`--decode-workers 1,3` compares PNG renders with that many GOP spans decoded at once (1: one
after the other, as before), interleaved (bench_render_decode.py: their decode alone).

Run: .venv/bin/python bench/bench_render.py [--repeat 3] [--skip-baseline] [--png-levels] [--split]
     [--decode-workers 1,3]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import av
import numpy as np
import skimage.data
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datapool.storage import LocalStore
from services.embedder import frame_encoding, span_decode
from services.embedder.backends import BackendOptions, load_backend
from services.embedder.decode import FrameDecoder, open_video
from services.embedder.embedding import EmbedSummary, embed_file
from services.embedder.frame_encoding import ImageFormat, encode_png
from services.embedder.frame_writes import FrameWriter
from services.embedder.gop_plan import plan, read_index
from services.embedder.render import render_frames
from services.embedder.span_decode import _span_frames

SIZE = (1280, 720)
FRAMES = 720
PICKS = 100
SCENES = ("astronaut", "coffee", "chelsea", "rocket")
Renderer = Callable[[Path, list[int]], Iterator[tuple[int, bytes]]]
GOPS = {
    "long": {},
    "short": {"x264-params": "keyint=15:min-keyint=15:scenecut=0"},
    "flat": {"x264-params": "keyint=250:scenecut=0:bframes=0"},
}


def _photo(name: str) -> Image.Image:
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8))


def _frames(rng: np.random.Generator) -> Iterator[np.ndarray]:
    per_scene = FRAMES // len(SCENES)
    out_w, out_h = SIZE
    for name in SCENES:
        src = _photo(name)
        w, h = src.size
        heading = rng.uniform(0, 2 * math.pi)
        for t in range(per_scene):
            # A window of 60% of the photo's width, panning ~1 window per 6 s and zooming slowly.
            scale = 0.6 * w * math.exp(-0.0015 * t) / out_w
            cx = w / 2 + 0.15 * w * math.cos(heading + t / 120)
            cy = h / 2 + 0.15 * h * math.sin(heading + t / 90)
            c, f = cx - scale * out_w / 2, cy - scale * out_h / 2
            view = src.transform(
                SIZE, Image.Transform.AFFINE, (scale, 0, c, 0, scale, f), Image.Resampling.BILINEAR
            )
            noisy = np.asarray(view, dtype=np.int16) + rng.integers(-4, 5, (out_h, out_w, 3), dtype=np.int16)
            yield np.clip(noisy, 0, 255).astype(np.uint8)


def clips() -> dict[str, Path]:
    """The clip per GOP shape, made once (all shapes from the same frames)."""
    folder = Path(tempfile.gettempdir()) / "datapool-render-bench"
    paths = {gop: folder / f"clip-{gop}-{SIZE[0]}x{SIZE[1]}-{FRAMES}.mp4" for gop in GOPS}
    missing = {gop: p for gop, p in paths.items() if not p.exists()}
    if not missing:
        return paths
    print(f"generating {len(missing)} clips in {folder} (once)...", file=sys.stderr, flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    partial = {gop: p.with_name(f".{p.name}.partial.mp4") for gop, p in missing.items()}
    containers = {gop: av.open(str(p), mode="w") for gop, p in partial.items()}
    streams = {}
    for gop, container in containers.items():
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "crf": "23", **GOPS[gop]}
        streams[gop] = stream
    for t, pixels in enumerate(_frames(np.random.default_rng(0))):
        for gop, container in containers.items():
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = t
            container.mux(streams[gop].encode(frame))
    for gop, container in containers.items():
        container.mux(streams[gop].encode(None))
        container.close()
        partial[gop].rename(paths[gop])
    return paths


def baseline_render(path: Path, indices: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """RenderFrames' core before issue 15: one decode from frame 0, PNG level 6, serial."""
    wanted = sorted(set(indices))
    with FrameDecoder(path, size=None) as decoder:
        for index, frame in decoder.frames(only=frozenset(wanted)):
            buffer = io.BytesIO()
            Image.fromarray(frame, mode="RGB").save(buffer, format="PNG", compress_level=6)
            yield index, buffer.getvalue()
            if index == wanted[-1]:
                return


def picks(shape: str) -> list[int]:
    if shape == "even":
        return [round(i * (FRAMES - 1) / (PICKS - 1)) for i in range(PICKS)]
    starts = (40, 230, 400, 610)  # clustered: 4 runs of 25 frames
    return [s + i for s in starts for i in range(PICKS // len(starts))]


class Timed(NamedTuple):
    wall: float  # seconds
    cpu: float  # seconds of CPU, all threads of this process (the machine is shared)
    size: int = 0  # bytes written


def time_render(render: Renderer, path: Path, shape: str) -> Timed:
    """As the servicer's RenderFrames: the images go to a (local) pool through FrameWriter."""
    with tempfile.TemporaryDirectory() as out:
        wall, cpu = time.perf_counter(), time.process_time()
        written = 0
        with FrameWriter(LocalStore(out)) as writer:
            for index, data in render(path, picks(shape)):
                writer.submit(index, [f"frames/run/{index:04d}.img"], data)
                written += len(data)
            writer.finish()
        return Timed(time.perf_counter() - wall, time.process_time() - cpu, written)


def time_embed(path: Path, backend_name: str) -> Timed:
    backend = load_backend(backend_name, BackendOptions())
    backend.warm_up()
    wall, cpu = time.perf_counter(), time.process_time()
    summary = [e for e in embed_file(path, backend) if isinstance(e, EmbedSummary)]
    assert summary and summary[0].frame_count == FRAMES, summary
    print(f"embed backend: {backend.name} ({backend.reason})")
    return Timed(time.perf_counter() - wall, time.process_time() - cpu)


def png_levels(path: Path) -> None:
    """Encode ms (CPU of the one thread) and KiB per frame: Pillow's PNG at each zlib level (before
    issue 15: level 6), FFmpeg's PNG with a fixed row filter (then up, level 1), our PNG (rows
    filtered up, deflated by ISA-L; level 1) at each ISA-L level, and Pillow's JPEG."""
    with FrameDecoder(path, size=None) as decoder:
        frames = [f for _, f in decoder.frames(only=frozenset(picks("even")[::4]))]
    print(f"{len(frames)} frames of {SIZE[0]}x{SIZE[1]}: encode ms/frame, KiB/frame")

    def pillow_png(level: int) -> Callable[[np.ndarray], bytes]:
        def encode(frame: np.ndarray) -> bytes:
            buffer = io.BytesIO()
            Image.fromarray(frame, mode="RGB").save(buffer, format="PNG", compress_level=level)
            return buffer.getvalue()

        return encode

    def ffmpeg_png(pred: str, level: int) -> Callable[[np.ndarray], bytes]:
        """FFmpeg's PNG encoder (what the embedder used before ISA-L: pred up, level 1)."""

        def encode(frame: np.ndarray) -> bytes:
            encoder = av.CodecContext.create("png", "w")
            encoder.width, encoder.height, encoder.pix_fmt = frame.shape[1], frame.shape[0], "rgb24"
            encoder.thread_count = 1  # the time is this thread's CPU
            encoder.options = {"pred": pred, "compression_level": str(level)}
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            return b"".join(bytes(p) for p in [*encoder.encode(picture), *encoder.encode(None)])

        return encode

    def isal_png(level: int) -> Callable[[np.ndarray], bytes]:
        def encode(frame: np.ndarray) -> bytes:
            with mock.patch.object(frame_encoding, "PNG_LEVEL", level):
                return encode_png(frame)

        return encode

    cases = [(f"pillow png {lv}", pillow_png(lv)) for lv in (0, 1, 3, 6, 9)]
    cases += [(f"ffmpeg png {p} {lv}", ffmpeg_png(p, lv)) for p in ("sub", "up", "paeth") for lv in (1, 3)]
    cases += [(f"isal png up {lv}", isal_png(lv)) for lv in (0, 1, 2, 3)]  # ours: level 1
    cases += [(f"pillow jpg {q}", ImageFormat("jpg", q).encode_jpg) for q in (90, 95)]
    for label, encode in cases:
        started = time.thread_time()
        size = sum(len(encode(frame)) for frame in frames)
        ms = (time.thread_time() - started) / len(frames) * 1000
        print(f"{label:18} {ms:7.1f} ms {size / len(frames) / 1024:8.0f} KiB", flush=True)


def split(paths: dict[str, Path]) -> None:
    """The PNG render's CPU by step, one thread, as render_frames plans and decodes now."""
    print("CPU seconds of each step (one thread), PNG; frames: decoded / in the spans / picked")
    for gop, path in paths.items():
        for shape in ("even", "clustered"):
            wanted = picks(shape)
            cpu = time.process_time()
            container = open_video(path)
            index = read_index(container)
            spans = plan(index, wanted, FRAMES) if index is not None else None
            assert index is not None and spans is not None, "the bench clips seek"
            steps = {"demux": time.process_time() - cpu}
            stream, raw, decoded, cpu = container.streams.video[0], [], 0, time.process_time()
            for span in spans:
                container.seek(span.start_pts, backward=True, any_frame=False, stream=stream)
                for frame in _span_frames(container, stream, index, span):
                    decoded += 1
                    if frame.pts in span.wanted:
                        raw.append(frame)
            container.close()
            steps["decode"], cpu = time.process_time() - cpu, time.process_time()
            rgb = [frame.to_ndarray(format="rgb24") for frame in raw]
            steps["rgb"], cpu = time.process_time() - cpu, time.process_time()
            pngs = [encode_png(frame) for frame in rgb]
            steps["png"] = time.process_time() - cpu
            with tempfile.TemporaryDirectory() as out, FrameWriter(LocalStore(out)) as writer:
                cpu = time.process_time()
                for i, data in enumerate(pngs):
                    writer.submit(i, [f"frames/{i:04d}.png"], data)
                writer.finish()
                steps["write"] = time.process_time() - cpu
            spanned = sum(s.end - s.start for s in spans)
            kib = sum(map(len, pngs)) / len(pngs) / 1024
            print(
                f"{gop:6} {shape:10} frames {decoded:3} / {spanned:3} / {len(raw):3}  "
                + "  ".join(f"{k} {v:4.2f}" for k, v in steps.items())
                + f"  sum {sum(steps.values()):4.2f} s; {kib:.0f} KiB/frame",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the best is reported")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--png-levels", action="store_true", help="only compare PNG levels and JPEG")
    parser.add_argument("--split", action="store_true", help="only show where a PNG render's CPU goes")
    parser.add_argument(
        "--decode-workers", metavar="N,N", help="only PNG, with these numbers of GOP spans decoded at once"
    )
    args = parser.parse_args()
    paths = clips()
    if args.png_levels:
        png_levels(paths["long"])
        return
    if args.split:
        split(paths)
        return
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    embed = min(time_embed(paths["long"], args.backend) for _ in range(args.repeat))
    print(f"embed, {FRAMES} frames of {SIZE[0]}x{SIZE[1]}: {embed.wall:.2f} s, {embed.cpu:.2f} s of CPU")
    # With the frame count, as the scheduler asks: the embedding found it.
    renders: dict[str, Renderer] = {
        "png": lambda path, frames: render_frames(path, frames, frame_count=FRAMES),
        "jpg 90": lambda path, frames: render_frames(path, frames, ImageFormat("jpg", 90), FRAMES),
    }
    if args.decode_workers:
        renders = {f"png w{n}": _with_workers(int(n)) for n in args.decode_workers.split(",")}
    if not args.skip_baseline:
        renders = {"baseline": baseline_render, **renders}
    print("share: render / (embed + render), of wall time and of CPU time")
    print(
        f"{'gop':6} {'picks':10} {'how':9} {'wall s':>7} {'cpu s':>7} {'share':>6} {'cpu sh':>6} {'MiB':>6}"
    )
    for gop, path in paths.items():
        for shape in ("even", "clustered"):
            # Interleaved, so that a change in the machine's load hits every row alike.
            runs: dict[str, list[Timed]] = {how: [] for how in renders}
            for _ in range(args.repeat):
                for how, render in renders.items():
                    runs[how].append(time_render(render, path, shape))
            for how, timed in runs.items():
                r = min(timed)
                share, cpu_share = r.wall / (embed.wall + r.wall), r.cpu / (embed.cpu + r.cpu)
                print(
                    f"{gop:6} {shape:10} {how:9} {r.wall:7.2f} {r.cpu:7.2f} {share:6.1%} {cpu_share:6.1%} "
                    f"{r.size / 2**20:6.1f}",
                    flush=True,
                )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def _with_workers(workers: int) -> Renderer:
    """The PNG render with `workers` GOP spans decoded at once (1: one after the other, as before)."""

    def render(path: Path, frames: list[int]) -> Iterator[tuple[int, bytes]]:
        with mock.patch.object(span_decode, "DECODE_WORKERS", workers):
            yield from render_frames(path, frames, frame_count=FRAMES)

    return render


if __name__ == "__main__":
    main()
