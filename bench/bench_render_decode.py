"""The decode of RenderFrames' GOP spans alone, with one and with several spans at a time.

bench_render.py's clips and picks (720 frames of 720p H.264, 100 picks; long, short and flat
GOPs); each case's spans as render_frames plans them, decoded to RGB by
`decode_spans_on_threads` with DECODE_WORKERS set to each count: no encoding, no writes, so
what the threads change is seen without the encoders' time around it. The counts' runs are
interleaved, so that a change in a shared machine's load hits them alike.

Run: .venv/bin/python bench/bench_render_decode.py [--workers 1,3] [--repeat 6]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_render import FRAMES, clips, picks

from services.embedder import span_decode
from services.embedder.decode import open_video
from services.embedder.gop_plan import plan, read_index


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workers", default="1,3", help="spans decoded at once, each count (default %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"decode + RGB of the spans: wall s best / median of {args.repeat}, interleaved; CPU s median")
    for gop, path in clips().items():
        with contextlib.closing(open_video(path)) as container:
            index = read_index(container)
        for shape in ("even", "clustered"):
            spans = plan(index, picks(shape), FRAMES) if index is not None else None
            assert index is not None and spans is not None, "the bench clips seek"
            runs: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
            for _ in range(args.repeat):
                for n in counts:
                    wall, cpu = time.perf_counter(), time.process_time()
                    with mock.patch.object(span_decode, "DECODE_WORKERS", n):
                        collections.deque(span_decode.decode_spans_on_threads(path, index, spans), 0)
                    runs[n].append((time.perf_counter() - wall, time.process_time() - cpu))
            for n, timed in runs.items():
                walls = sorted(w for w, _ in timed)
                print(
                    f"{gop:6} {shape:10} {len(spans):2} spans, {n} at a time: {walls[0]:.2f} / "
                    f"{statistics.median(walls):.2f} s, CPU {statistics.median(c for _, c in timed):.2f} s",
                    flush=True,
                )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
