"""Anonymous memory of one Select in the selector service, in process: in memory vs spilled.

    .venv/bin/python bench/select_memory.py --frames 200000 --dim 512 --max-run-memory-mb 2048
    .venv/bin/python bench/select_memory.py --frames 200000 --dim 512 --max-run-memory-mb 0

Streams `--frames` float16 frames (as embedders send them) in files of `--per-file` frames,
finishes the Select and commits it, and prints the largest RssAnon seen (anonymous memory:
what a copy of the vectors costs; the spill file's pages are page cache, RssFile).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from datapool.pool.files import FileRef
from datapool.pool.repository import PoolRepository
from datapool.storage import LocalStore
from services.selector.service import SelectorService
from services.selector.session import SelectionSpec


def rss_anon_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--per-file", type=int, default=2_000)
    parser.add_argument("--picks", type=int, default=100)
    parser.add_argument("--max-run-memory-mb", type=int, default=2048)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pool"
        root.mkdir()
        repo = PoolRepository(LocalStore(root))
        try:
            service = SelectorService(max_run_memory_bytes=args.max_run_memory_mb << 20, spill_dir=tmp)
        except TypeError:  # a checkout before the spill file: measures "before"
            service = SelectorService()
        spec = SelectionSpec("mem", "run-mem", args.picks, -1.0, 0.0, "bench-model")
        base = rss_anon_mib()
        peak = 0.0
        started = time.perf_counter()
        stream = service.open_select(spec, repo)
        for start in range(0, args.frames, args.per_file):
            n = min(args.per_file, args.frames - start)
            # A slow random walk: consecutive frames are near-duplicates, as in video.
            walk = np.cumsum(rng.normal(scale=0.02, size=(n, args.dim)), axis=0) + rng.normal(size=args.dim)
            file = FileRef(f"clip{start // args.per_file:06d}.mp4", n, "e1")
            stream.add_batch(file, list(range(n)), walk.astype("<f2").tobytes(), args.dim, "float16")
            stream.complete_file(file, n, "video")
            peak = max(peak, rss_anon_mib() - base)
        session = service.finish_select(stream)
        peak = max(peak, rss_anon_mib() - base)
        frames = {p.frame_name: f"frames/run-mem/{p.frame_name}" for p in session.picks}
        service.commit("mem", "t0", frames)
        peak = max(peak, rss_anon_mib() - base)
        vectors_mib = args.frames * args.dim * 4 / 2**20
        print(
            f"frames={args.frames} dim={args.dim} float32 vectors={vectors_mib:.0f} MiB "
            f"max_run_memory_mb={args.max_run_memory_mb} spilled={_spilled(stream) >> 20} MiB "
            f"peak RssAnon growth={peak:.0f} MiB ({peak / vectors_mib:.2f}x the vectors) "
            f"picks={len(session.picks)} seconds={time.perf_counter() - started:.1f}"
        )


def _spilled(stream: object) -> int:
    run_vectors = getattr(stream, "run_vectors", None)
    return int(run_vectors.spilled_bytes) if run_vectors is not None else 0


if __name__ == "__main__":
    main()
