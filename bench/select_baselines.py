"""Baselines for `selector_rs.select_diverse`, and a float64 check of any pick sequence.

The rule (see selector_rs.pyi): ``D(i)`` is the Euclidean distance from candidate ``i``
to its nearest row among the pool and the candidates picked so far (+inf with neither);
each step picks the unpicked candidate with the largest ``D`` (lowest index on ties)
and selection stops after ``n_samples`` picks, when no candidates are left, or when
the largest ``D`` is below ``min_distance``.

- `numpy_select`: the straightforward BLAS version. Squared distances to the pool by
  GEMM in bounded blocks (``|c|^2 + |p|^2 - 2 c.p``), then one matrix-vector product
  over all candidates per pick, with preallocated float32 buffers.
- `faiss_select`: the same algorithm with faiss-cpu doing the heavy parts: `faiss.knn`
  (BLAS-blocked exact search, k=1) against the pool, then per pick
  `faiss.fvec_L2sqr_ny` (direct SIMD distances from one vector to many) on one slice
  of the candidates per core. Measured on 100,000 x 1280 candidates (2 cores, AMD EPYC):
  fvec_L2sqr_ny 27 ms on one thread, 19 ms split over two threads; faiss.pairwise_L2sqr
  78 ms (it recomputes the candidates' norms each call); IndexFlatL2(candidates)
  .search(q, 1) 74 ms (and copies the candidates).
- `float64_reference_check`: replays a pick sequence against float64 distances computed
  block by block, and reports the worst violation of the rule.

Both baselines return (indices int64, distances float64 of each pick to the pool and the
earlier picks).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Bound on the float32 (rows x pool rows) block the numpy baseline multiplies at once.
BLOCK_BYTES = 64 << 20
# Candidate rows and pool rows per block in the float64 check.
CHECK_ROWS = 2048
CHECK_POOL_ROWS = 4096
# Largest float64 pool copy the check keeps for the whole run.
CHECK_POOL_BYTES = 512 << 20


def _validate(cands: F32, pool: F32, n_samples: int, min_distance: float) -> int:
    if cands.dtype != np.float32 or cands.ndim != 2 or not cands.flags.c_contiguous:
        raise ValueError("cands must be a C-contiguous float32 matrix")
    if pool.dtype != np.float32 or pool.ndim != 2 or not pool.flags.c_contiguous:
        raise ValueError("pool must be a C-contiguous float32 matrix")
    if pool.shape[0] and pool.shape[1] != cands.shape[1]:
        raise ValueError(f"width mismatch: cands {cands.shape}, pool {pool.shape}")
    if n_samples < 0 or not math.isfinite(min_distance) or min_distance < 0:
        raise ValueError("need n_samples >= 0 and a finite min_distance >= 0")
    return min(n_samples, int(cands.shape[0]))


def _greedy(nearest: F32, budget: int, min_distance: float, relax: Callable[[int], None]) -> tuple[I64, F64]:
    """The greedy loop over squared distances ``nearest`` (updated in place).

    Picked rows are set to -inf, so that a plain argmax (the first maximum: the lowest
    index on ties) finds the next pick; `relax(i)` lowers ``nearest`` with row ``i``.
    """
    picks: list[int] = []
    dists: list[float] = []
    while len(picks) < budget:
        i = int(np.argmax(nearest))
        d = math.sqrt(max(float(nearest[i]), 0.0))
        if d < min_distance:
            break
        picks.append(i)
        dists.append(d)
        nearest[i] = -np.inf
        if len(picks) < budget:
            relax(i)
    return np.asarray(picks, dtype=np.int64), np.asarray(dists, dtype=np.float64)


def numpy_nearest_pool_sq(cands: F32, pool: F32, block_bytes: int = BLOCK_BYTES) -> F32:
    """Squared distance from each candidate to its nearest pool row (float32; +inf without a pool).

    GEMM on blocks of (candidate rows x pool rows) whose float32 product stays within
    ``block_bytes``.
    """
    n = cands.shape[0]
    nearest = np.full(n, np.inf, dtype=np.float32)
    p = pool.shape[0]
    if p == 0 or n == 0:
        return nearest
    cn = np.einsum("ij,ij->i", cands, cands)
    pn = np.einsum("ij,ij->i", pool, pool)
    elems = max(block_bytes // 4, 1)
    rows = max(1, min(n, 4096, elems // p))
    cols = max(1, min(p, elems // rows))
    buf = np.empty(rows * cols, dtype=np.float32)
    best = np.empty(rows, dtype=np.float32)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        out = nearest[r0:r1]
        for c0 in range(0, p, cols):
            c1 = min(p, c0 + cols)
            g = buf[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
            np.matmul(cands[r0:r1], pool[c0:c1].T, out=g)
            g *= np.float32(-2.0)
            g += pn[c0:c1]
            b = best[: r1 - r0]
            np.min(g, axis=1, out=b)
            np.minimum(out, b, out=out)
        out += cn[r0:r1]
    return nearest


class _NumpyRelax:
    def __init__(self, cands: F32, nearest: F32) -> None:
        self.cands = cands
        self.nearest = nearest
        self.cn = np.einsum("ij,ij->i", cands, cands)
        self.q = np.empty((cands.shape[1], 1), dtype=np.float32)
        self.dot = np.empty((cands.shape[0], 1), dtype=np.float32)
        self.d2 = np.empty(cands.shape[0], dtype=np.float32)

    def __call__(self, i: int) -> None:
        self.q[:, 0] = self.cands[i]
        # (N, d) @ (d, 1): the fastest of the matrix-vector forms OpenBLAS offers here.
        np.matmul(self.cands, self.q, out=self.dot)
        np.multiply(self.dot[:, 0], np.float32(-2.0), out=self.d2)
        self.d2 += self.cn
        self.d2 += self.cn[i]
        np.minimum(self.nearest, self.d2, out=self.nearest)


def numpy_select(
    cands: F32, pool: F32, n_samples: int, min_distance: float, phases: dict[str, float] | None = None
) -> tuple[I64, F64]:
    """Greedy farthest-point selection with NumPy/BLAS (float32).

    ``phases``, if given, receives the seconds spent on the pool ("pool") and on the
    picks ("picks").
    """
    budget = _validate(cands, pool, n_samples, min_distance)
    if budget == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    t0 = time.perf_counter()
    nearest = numpy_nearest_pool_sq(cands, pool)
    t1 = time.perf_counter()
    result = _greedy(nearest, budget, min_distance, _NumpyRelax(cands, nearest))
    if phases is not None:
        phases.update(pool=t1 - t0, picks=time.perf_counter() - t1)
    return result


class _FaissRelax:
    def __init__(self, cands: F32, nearest: F32, executor: ThreadPoolExecutor, parts: int) -> None:
        self.cands = cands
        self.nearest = nearest
        self.executor = executor
        self.d2 = np.empty(cands.shape[0], dtype=np.float32)
        n = cands.shape[0]
        bounds = [n * k // parts for k in range(parts + 1)]
        self.slices = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]

    def _part(self, i: int, a: int, b: int) -> None:
        d = self.cands.shape[1]
        faiss.fvec_L2sqr_ny(  # type: ignore[attr-defined]  # not in faiss's stubs
            faiss.swig_ptr(self.d2[a:b]),
            faiss.swig_ptr(self.cands[i]),
            faiss.swig_ptr(self.cands[a:b]),
            d,
            b - a,
        )
        np.minimum(self.nearest[a:b], self.d2[a:b], out=self.nearest[a:b])

    def __call__(self, i: int) -> None:
        for f in [self.executor.submit(self._part, i, a, b) for a, b in self.slices]:
            f.result()


def faiss_select(
    cands: F32,
    pool: F32,
    n_samples: int,
    min_distance: float,
    threads: int | None = None,
    phases: dict[str, float] | None = None,
) -> tuple[I64, F64]:
    """Greedy farthest-point selection with faiss-cpu doing the distance work (float32).

    ``threads`` defaults to os.cpu_count(); ``phases`` as for `numpy_select`.
    """
    budget = _validate(cands, pool, n_samples, min_distance)
    if budget == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    threads = threads or os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    if pool.shape[0]:
        dist, _ = faiss.knn(cands, pool, 1)
        nearest = np.ascontiguousarray(dist[:, 0], dtype=np.float32)
    else:
        nearest = np.full(cands.shape[0], np.inf, dtype=np.float32)
    t1 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as executor:
        result = _greedy(nearest, budget, min_distance, _FaissRelax(cands, nearest, executor, threads))
    if phases is not None:
        phases.update(pool=t1 - t0, picks=time.perf_counter() - t1)
    return result


@dataclass(frozen=True)
class ReferenceCheck:
    """Outcome of `float64_reference_check`; distances are float64 Euclidean."""

    worst: float  # the largest violation below; <= tol passes
    ok: bool
    pick_distances: F64  # each pick's distance to the pool and the earlier picks
    remaining_max: F64  # largest D among the checked candidates not yet picked, per step
    worst_step: int  # the step of `worst` (len(picks) for the stopping rule, -1 if none)
    rows_checked: int  # candidate rows compared (all of them unless `subset` was given)
    seconds: float


def _rows64(x: F32, a: int | I64, b: int | None = None) -> tuple[F64, F64]:
    """Rows ``x[a:b]`` (or ``x[a]`` for an index array) in float64, and their squared norms."""
    rows = (x[a:b] if b is not None else x[a]).astype(np.float64)
    return rows, np.einsum("ij,ij->i", rows, rows)


def _sq_dist64(a: F64, an: F64, b: F64, bn: F64) -> F64:
    d2: F64 = an[:, None] + bn[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


def float64_reference_check(
    cands: F32,
    pool: F32,
    picks: Sequence[int] | I64,
    min_distance: float,
    tol: float = 2e-4,
    *,
    budget: int,
    subset: I64 | None = None,
) -> ReferenceCheck:
    """Replays ``picks`` against float64 distances and returns the worst rule violation.

    Violations (in distance units): at each step, the largest ``D`` among the unpicked
    candidates minus the pick's own ``D``; ``min_distance`` minus a pick's ``D``; and, if
    fewer than ``min(budget, N)`` picks were made, the largest ``D`` left minus
    ``min_distance``. The check passes when the worst of them is <= ``tol``.

    Memory stays at a few blocks: candidates are processed ``CHECK_ROWS`` rows at a time
    (float64 GEMM against the pool in blocks, then against the picks), and for each
    block the per-step ``D`` of all its rows is a prefix minimum over the picks.

    With ``subset`` (candidate indices), only those rows and the picks are compared,
    which makes the step check a necessary condition only (for inputs too large for a
    full float64 pass).
    """
    t0 = time.perf_counter()
    n, d = cands.shape
    picks_arr = np.asarray(picks, dtype=np.int64)
    k = picks_arr.shape[0]
    expected = min(budget, n)
    if (
        k > expected
        or len(np.unique(picks_arr)) != k
        or (k and (picks_arr.min() < 0 or picks_arr.max() >= n))
    ):
        return ReferenceCheck(math.inf, False, np.empty(0), np.empty(0), -1, 0, time.perf_counter() - t0)
    rows = np.arange(n) if subset is None else np.union1d(np.asarray(subset, dtype=np.int64), picks_arr)
    step_of = np.full(n, -1, dtype=np.int64)
    step_of[picks_arr] = np.arange(k)

    picks64, picks_n = _rows64(cands, picks_arr)
    p = pool.shape[0]
    # float64 (CHECK_ROWS x POOL_ROWS) products of 64 MiB; the whole pool is converted once
    # when its float64 copy is small enough, block by block for every row block otherwise.
    pool_blocks = [(a, min(p, a + CHECK_POOL_ROWS)) for a in range(0, p, CHECK_POOL_ROWS)]
    keep_pool = p * d * 8 <= CHECK_POOL_BYTES
    pool64: list[tuple[F64, F64]] = [_rows64(pool, a, b) for a, b in pool_blocks] if keep_pool else []
    # Squared D before each step s = 0..k: the largest among unpicked checked rows.
    rem_sq = np.full(k + 1, -np.inf)
    pick_sq = np.full(k, np.nan)
    for r0 in range(0, rows.shape[0], CHECK_ROWS):
        idx = rows[r0 : r0 + CHECK_ROWS]
        c64, cn = _rows64(cands, idx)
        state = np.full((idx.shape[0], k + 1), np.inf)
        for j, (a, b) in enumerate(pool_blocks):
            blk, bn = pool64[j] if keep_pool else _rows64(pool, a, b)
            np.minimum(state[:, 0], _sq_dist64(c64, cn, blk, bn).min(axis=1), out=state[:, 0])
        if k:
            state[:, 1:] = _sq_dist64(c64, cn, picks64, picks_n)
        np.minimum.accumulate(state, axis=1, out=state)  # column s: squared D before step s
        for r in np.nonzero(step_of[idx] >= 0)[0]:
            s = int(step_of[idx[r]])
            pick_sq[s] = state[r, s]
            state[r, s + 1 :] = -np.inf
            state[r, s] = -np.inf  # judged against the others, not itself
        np.maximum(rem_sq, state.max(axis=0), out=rem_sq)

    pick_d = np.sqrt(pick_sq)
    rem_d = np.sqrt(np.maximum(rem_sq, 0.0))
    rem_d[rem_sq == -np.inf] = -np.inf
    worst, worst_step = -math.inf, -1
    for s in range(k):
        beaten = 0.0 if math.isinf(pick_d[s]) else float(rem_d[s] - pick_d[s])  # inf ties inf
        v = max(beaten, min_distance - float(pick_d[s]))
        if v > worst:
            worst, worst_step = v, s
    if k < expected:
        v = float(rem_d[k]) - min_distance
        if v > worst:
            worst, worst_step = v, k
    return ReferenceCheck(
        worst=worst,
        ok=worst <= tol,
        pick_distances=pick_d,
        remaining_max=rem_d[:k],
        worst_step=worst_step,
        rows_checked=int(rows.shape[0]),
        seconds=time.perf_counter() - t0,
    )
