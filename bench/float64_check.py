"""A float64 check of any pick sequence against the greedy rule of `selector_rs.select_diverse`.

`float64_reference_check` replays a pick sequence against float64 distances computed block by
block and reports the worst violation of the rule (see select_baselines for the rule);
`pick_distances64` gives each pick's float64 distance to the pool and the earlier picks, for
a baseline that reports only indices (lightly-mundig).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Candidate rows and pool rows per block in the float64 check.
CHECK_ROWS = 2048
CHECK_POOL_ROWS = 4096
# Largest float64 pool copy the check keeps for the whole run.
CHECK_POOL_BYTES = 512 << 20


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


def pick_distances64(cands: F32, pool: F32, picks: Sequence[int] | I64) -> F64:
    """Each pick's float64 distance to the pool and the picks before it (+inf with neither)."""
    picks_arr = np.asarray(picks, dtype=np.int64)
    k = picks_arr.shape[0]
    picks64, picks_n = _rows64(cands, picks_arr)
    best = np.full(k, np.inf)
    for a in range(0, pool.shape[0], CHECK_POOL_ROWS):
        blk, bn = _rows64(pool, a, min(pool.shape[0], a + CHECK_POOL_ROWS))
        np.minimum(best, _sq_dist64(picks64, picks_n, blk, bn).min(axis=1), out=best)
    if k > 1:
        among = _sq_dist64(picks64, picks_n, picks64, picks_n)
        among[np.triu_indices(k)] = np.inf  # only earlier picks count
        np.minimum(best, among.min(axis=1), out=best)
    out: F64 = np.sqrt(best)
    return out
