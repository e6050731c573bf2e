"""Baselines for `selector_rs.select_diverse`.

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
- `lightly_select`: lightly-mundig (PyPI), the Rust selection engine behind LightlyStudio,
  called as its docs show for our case: one matrix of pool rows then candidates, a
  diversifying strategy (Euclidean farthest-point; its ``stopping_condition_minimum_distance``
  stops before a pick closer than that, as our ``min_distance`` does), and the pool passed as
  preselected indices. Its result starts with those indices; it reports no distances, so they
  are computed in float64 (`pick_distances64` of tests/greedy_reference.py, the float64
  reference of the rule that the tests use too), outside the timed call.

The baselines return (indices int64, distances float64 of each pick to the pool and the
earlier picks).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import faiss
import lightly_mundig  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from bench_measure import Result

__all__ = [
    "agreement",
    "faiss_select",
    "lightly_select",
    "numpy_select",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Bound on the float32 (rows x pool rows) block the numpy baseline multiplies at once.
BLOCK_BYTES = 64 << 20


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


def lightly_select(
    cands: F32, pool: F32, n_samples: int, min_distance: float, phases: dict[str, float] | None = None
) -> tuple[I64, F64 | None]:
    """Greedy farthest-point selection with lightly-mundig, as its docs show for a preselected pool.

    Returns the candidate indices of its picks (the pool's preselected indices stripped) and
    no distances (the caller computes them); ``phases``: "stack" (the one matrix it takes)
    and "select".
    """
    budget = _validate(cands, pool, n_samples, min_distance)
    t0 = time.perf_counter()
    both = np.vstack([pool, cands])
    t1 = time.perf_counter()
    selection = lightly_mundig.Selection()
    selection.add_diversifying_strategy(
        embeddings=both,
        strength=1.0,
        stopping_condition_minimum_distance=min_distance if min_distance > 0 else None,
    )
    p = pool.shape[0]
    picked = selection.run_selection(list(range(p)), len(both), p + budget)
    if phases is not None:
        phases.update(stack=t1 - t0, select=time.perf_counter() - t1)
    if list(picked[:p]) != list(range(p)):
        raise RuntimeError("lightly-mundig: the result does not start with the preselected pool")
    return np.asarray(picked[p:], dtype=np.int64) - p, None


def agreement(ours: I64, ours_d: npt.NDArray[np.float64], other: Result) -> str:
    """Whether a baseline picked what we picked; where not, how far apart the pick distances are."""
    assert other.distances is not None and other.picks is not None
    if np.array_equal(ours, other.picks):
        same = "same picks"
    else:
        k = min(len(ours), len(other.picks))
        diff = np.nonzero(ours[:k] != other.picks[:k])[0]
        first = int(diff[0]) if len(diff) else k
        same = f"picks differ from step {first} ({len(other.picks)} picks vs our {len(ours)})"
    k = min(len(ours_d), len(other.distances))
    finite = np.isfinite(ours_d[:k]) & np.isfinite(other.distances[:k])
    gap = float(np.abs(ours_d[:k][finite] - other.distances[:k][finite]).max()) if finite.any() else 0.0
    return f"{other.name}: {same}; max |pick distance - ours| = {gap:.2e}"
