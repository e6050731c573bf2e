"""Decode+embed frames per second of the CPU backend on generated videos (issue 5 builds the real benchmark).

Run: .venv/bin/python bench/bench_embed_cpu.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from datapool.samples import make_video
from services.embedder.embedding import embed_file
from services.embedder.model import load_backend


def main() -> None:
    backend = load_backend("auto")
    with tempfile.TemporaryDirectory() as tmp:
        for size, n in [((96, 64), 128), ((1280, 720), 96)]:
            path = make_video(Path(tmp) / f"v{size[0]}.mp4", scene_seed=1, n_frames=n, size=size)
            list(embed_file(path, backend, 64))  # warm-up: first calls pay for allocation
            t = time.monotonic()
            list(embed_file(path, backend, 64))
            dt = time.monotonic() - t
            print(f"{size[0]}x{size[1]}: {n} frames in {dt:.2f} s = {n / dt:.1f} frames/s ({backend.name})")


if __name__ == "__main__":
    main()
