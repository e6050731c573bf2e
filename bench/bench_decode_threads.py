"""Decode speed of a 720p H.264 clip under PyAV's thread settings, against one thread.

What the embedder does per frame: decode, then scale to the model's 224x224 and
convert to RGB inside swscale. Each setting decodes the same clip; settings are
interleaved over several rounds and the best round of each is kept, since this
machine is shared. Ratios are against `thread_type=NONE` (one thread) of the same run.
The last rows run the embedder's own FrameDecoder (its fixed settings), in software
and, where torch sees a CUDA GPU, on the GPU.

    .venv/bin/python bench/bench_decode_threads.py [--frames 120] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datapool.samples import make_video
from services.embedder.decode import FrameDecoder
from services.embedder.hwdecode import cuda_present

# (thread_type, thread_count); count 0 lets FFmpeg pick from the CPU count.
SETTINGS: list[tuple[str, int]] = [
    ("NONE", 1),
    ("SLICE", 2),
    ("SLICE", 4),
    ("FRAME", 2),
    ("FRAME", 4),
    ("FRAME", 8),
    ("AUTO", 0),
]


def decode_seconds(path: Path, thread_type: str, thread_count: int, size: tuple[int, int]) -> float:
    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = thread_type
        stream.codec_context.thread_count = thread_count
        for frame in container.decode(stream):
            frame.to_ndarray(width=size[0], height=size[1], format="rgb24")
    return time.perf_counter() - started


def frame_decoder_seconds(path: Path, gpu: bool, size: tuple[int, int]) -> float:
    started = time.perf_counter()
    with FrameDecoder(path, size=size, gpu=gpu) as decoder:
        for _ in decoder.frames():
            pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, PyAV {av.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(Path(tmp) / "clip.mp4", scene_seed=1, n_frames=args.frames, size=(1280, 720))
        best = {s: float("inf") for s in SETTINGS}
        decoders = ["FrameDecoder", "FrameDecoder GPU"] if cuda_present() else ["FrameDecoder"]
        best_decoder = {name: float("inf") for name in decoders}
        decode_seconds(path, "NONE", 1, (224, 224))  # warm-up: file cache, swscale tables
        for name in decoders:
            frame_decoder_seconds(path, name.endswith("GPU"), (224, 224))  # warm-up: CUDA context
        for _ in range(args.rounds):
            for setting in SETTINGS:
                best[setting] = min(best[setting], decode_seconds(path, *setting, (224, 224)))
            for name in decoders:
                seconds = frame_decoder_seconds(path, name.endswith("GPU"), (224, 224))
                best_decoder[name] = min(best_decoder[name], seconds)
    base = best[("NONE", 1)]
    rows = [(f"{thread_type:>5} x{count}", seconds) for (thread_type, count), seconds in best.items()]
    for label, seconds in rows + list(best_decoder.items()):
        fps = args.frames / seconds
        ratio = base / seconds
        print(f"{label:>16}: {seconds:6.3f} s, {fps:7.1f} frames/s, {ratio:4.2f}x one thread")


if __name__ == "__main__":
    main()
