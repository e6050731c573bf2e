"""OpenBLAS (through NumPy) on the shapes of ``selector_rs/core/benches/gemm.rs``: the roofline for its GEMMs.

Same shapes, same arrangement of the work as NumPy's own baseline (``bench/select_baselines.py``: blocks of
up to 4,096 candidate rows, one multi-threaded matmul per block), float32 rows uniform on the sphere, median
of repeats after a warm-up round. Run it right after (or interleaved with) the Rust bench, same machine::

    .venv/bin/python bench/gemm_numpy.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

COLS = 1280
ROWS_PER_MATMUL = 4096
TARGET_CHUNK = 8192
SHAPES = [("sample 256 x 2048", 256, 2048), ("blocks 2048 x 5000", 2048, 5000),
          ("blocks 256 x 100000", 256, 100_000), ("full 20000 x 1000", 20_000, 1000)]  # fmt: skip


def _sphere(rows: int, seed: int) -> npt.NDArray[np.float32]:
    x = np.random.default_rng(seed).standard_normal((rows, COLS)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _pass(x: npt.NDArray[np.float32], t: npt.NDArray[np.float32], out: npt.NDArray[np.float32]) -> float:
    total = 0.0
    for r0 in range(0, x.shape[0], ROWS_PER_MATMUL):
        xb = x[r0 : r0 + ROWS_PER_MATMUL]
        for c0 in range(0, t.shape[0], TARGET_CHUNK):
            tb = t[c0 : c0 + TARGET_CHUNK]
            g = out[: xb.shape[0] * tb.shape[0]].reshape(xb.shape[0], tb.shape[0])
            np.matmul(xb, tb.T, out=g)
            total += float(g[0, 0])
    return total


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="OpenBLAS threads (threadpoolctl)")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, n, p in SHAPES:
            x, t = _sphere(n, 1), _sphere(p, 2)
            out = np.empty(min(n, ROWS_PER_MATMUL) * min(p, TARGET_CHUNK), dtype=np.float32)
            times = []
            for _ in range(args.repeats + 1):
                start = time.perf_counter()
                _pass(x, t, out)
                times.append(time.perf_counter() - start)
            median = float(np.median(times[1:]))
            flop = 2.0 * n * p * COLS
            print(f"{name:<22} {'OpenBLAS':<22} {median:>8.4f} s {flop / median / 1e9:>7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
