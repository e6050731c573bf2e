"""The float64 reference of selector_rs's greedy rule, for the tests and bench/bench_select.py.

The rule (selector_rs.pyi): ``D(i)`` is the Euclidean distance from candidate ``i`` to its
nearest row among the pool and the candidates picked so far (+inf with neither); each step
picks the unpicked candidate with the largest ``D`` (lowest index on ties); selection stops
after ``n_samples`` picks, when no candidates are left, or when the largest ``D`` is below
``min_distance``.

- `reference_select`: the rule run from scratch (small inputs); `pool_distances64`: each
  candidate's ``D`` before the first pick.
- `replay64`: a given pick sequence replayed: each pick's ``D`` and the largest ``D`` left
  among the other unpicked candidates before each step and after the last. Candidates go
  ``CHECK_ROWS`` at a time, so memory stays at a few blocks even for 1,000,000 x 1280 inputs.
- `float64_reference_check`: the worst violation of the rule in a pick sequence (the bench's
  PASS/FAIL); `pick_distances64`: each pick's distance to the pool and the earlier picks.

Small blocks are compared by exact differences, so that near-duplicate rows keep their tiny
distances and equal distances stay equal; large ones in the Gram form
(``|a|^2 + |b|^2 - 2 a.b``), accurate to ~1e-11 for unit-norm rows at distances of 1e-2 and more.

The bench reaches this module by putting tests/ on sys.path: judging a selection is test code,
and the bench borrows the judge rather than keeping a copy of it.
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

# Candidate rows and pool rows per block.
CHECK_ROWS = 2048
CHECK_POOL_ROWS = 4096
# Largest float64 pool copy kept for the whole replay.
CHECK_POOL_BYTES = 512 << 20
# Up to this many float64 elements in (rows x others x columns), differences are exact.
EXACT_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Rows:
    """Rows in float64 and their squared norms (for the Gram form)."""

    values: F64
    norms: F64

    @classmethod
    def of(cls, x: F32, a: int | I64, b: int | None = None) -> Rows:
        """Rows ``x[a:b]`` (or ``x[a]`` for an index array)."""
        rows = (x[a:b] if b is not None else x[a]).astype(np.float64)
        return cls(rows, np.einsum("ij,ij->i", rows, rows))


def squared_distances64(a: Rows, b: Rows) -> F64:
    """(len(a), len(b)) squared Euclidean distances."""
    if a.values.shape[0] * b.values.shape[0] * a.values.shape[1] <= EXACT_ELEMENTS:
        exact: F64 = ((a.values[:, None, :] - b.values[None, :, :]) ** 2).sum(axis=2)
        return exact
    d2: F64 = a.norms[:, None] + b.norms[None, :] - 2.0 * (a.values @ b.values.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


def _pool_squared(rows: Rows, pool: F32) -> F64:
    if not pool.shape[0]:
        return np.full(rows.values.shape[0], np.inf)
    sq: F64 = squared_distances64(rows, Rows.of(pool, 0, pool.shape[0])).min(axis=1)
    return sq


def pool_distances64(cands: F32, pool: F32) -> F64:
    """Each candidate's D before the first pick: its distance to the nearest pool row (+inf)."""
    out: F64 = np.sqrt(_pool_squared(Rows.of(cands, 0, cands.shape[0]), pool))
    return out


def reference_select(cands: F32, pool: F32, n_samples: int, min_distance: float) -> list[int]:
    """The picks of the rule, computed from scratch in float64 (small inputs)."""
    rows = Rows.of(cands, 0, cands.shape[0])
    sq = _pool_squared(rows, pool)
    picks: list[int] = []
    while len(picks) < min(n_samples, cands.shape[0]):
        dist = np.sqrt(sq)
        dist[picks] = -np.inf
        best = int(np.argmax(dist))  # first maximum: the lowest index wins ties
        if dist[best] < min_distance:
            break
        picks.append(best)
        np.minimum(sq, squared_distances64(rows, Rows.of(cands, np.array([best]))).min(axis=1), out=sq)
    return picks


@dataclass(frozen=True)
class Replay:
    """A pick sequence replayed in float64; distances are Euclidean."""

    pick_distances: F64  # each pick's D when it was made
    # Before step s (s = 0..len(picks)): the largest D among the checked unpicked candidates
    # other than pick s; -inf if there are none.
    remaining_max: F64
    rows_checked: int


def replay64(cands: F32, pool: F32, picks: Sequence[int] | I64, subset: I64 | None = None) -> Replay:
    """Replays ``picks`` (distinct, in range) against float64 distances.

    With ``subset`` (candidate indices), only those rows and the picks are compared, so
    ``remaining_max`` is a lower bound (for inputs too large for a full float64 pass).

    For each block of candidates, the squared ``D`` before each step is a prefix minimum over
    [pool, pick 0, pick 1, ...] of the block's distances to them.
    """
    n, d = cands.shape
    picks_arr = np.asarray(picks, dtype=np.int64)
    k = picks_arr.shape[0]
    rows = np.arange(n) if subset is None else np.union1d(np.asarray(subset, dtype=np.int64), picks_arr)
    step_of = np.full(n, -1, dtype=np.int64)
    step_of[picks_arr] = np.arange(k)
    picked = Rows.of(cands, picks_arr)
    p = pool.shape[0]
    pool_blocks = [(a, min(p, a + CHECK_POOL_ROWS)) for a in range(0, p, CHECK_POOL_ROWS)]
    # The whole pool is converted once when its float64 copy is small enough, else per row block.
    keep_pool = p * d * 8 <= CHECK_POOL_BYTES
    pool64 = [Rows.of(pool, a, b) for a, b in pool_blocks] if keep_pool else []
    rem_sq = np.full(k + 1, -np.inf)
    pick_sq = np.full(k, np.nan)
    for r0 in range(0, rows.shape[0], CHECK_ROWS):
        idx = rows[r0 : r0 + CHECK_ROWS]
        block = Rows.of(cands, idx)
        state = np.full((idx.shape[0], k + 1), np.inf)
        for j, (a, b) in enumerate(pool_blocks):
            other = pool64[j] if keep_pool else Rows.of(pool, a, b)
            np.minimum(state[:, 0], squared_distances64(block, other).min(axis=1), out=state[:, 0])
        if k:
            state[:, 1:] = squared_distances64(block, picked)
        np.minimum.accumulate(state, axis=1, out=state)  # column s: squared D before step s
        for r in np.nonzero(step_of[idx] >= 0)[0]:
            s = int(step_of[idx[r]])
            pick_sq[s] = state[r, s]
            state[r, s:] = -np.inf  # judged against the others, not itself; gone afterwards
        np.maximum(rem_sq, state.max(axis=0), out=rem_sq)
    remaining = np.sqrt(np.maximum(rem_sq, 0.0))
    remaining[rem_sq == -np.inf] = -np.inf
    return Replay(np.sqrt(pick_sq), remaining, int(rows.shape[0]))


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
    ``min_distance``. The check passes when the worst of them is <= ``tol``. With
    ``subset``, the step check is a necessary condition only (see `replay64`).
    """
    t0 = time.perf_counter()
    n = cands.shape[0]
    picks_arr = np.asarray(picks, dtype=np.int64)
    k = picks_arr.shape[0]
    if (
        k > min(budget, n)
        or len(np.unique(picks_arr)) != k
        or (k and (picks_arr.min() < 0 or picks_arr.max() >= n))
    ):
        return ReferenceCheck(math.inf, False, np.empty(0), np.empty(0), -1, 0, time.perf_counter() - t0)
    replay = replay64(cands, pool, picks_arr, subset)
    pick_d, rem_d = replay.pick_distances, replay.remaining_max
    worst, worst_step = -math.inf, -1
    for s in range(k):
        beaten = 0.0 if math.isinf(pick_d[s]) else float(rem_d[s] - pick_d[s])  # inf ties inf
        v = max(beaten, min_distance - float(pick_d[s]))
        if v > worst:
            worst, worst_step = v, s
    if k < min(budget, n):
        v = float(rem_d[k]) - min_distance
        if v > worst:
            worst, worst_step = v, k
    return ReferenceCheck(
        worst=worst,
        ok=worst <= tol,
        pick_distances=pick_d,
        remaining_max=rem_d[:k],
        worst_step=worst_step,
        rows_checked=replay.rows_checked,
        seconds=time.perf_counter() - t0,
    )


def pick_distances64(cands: F32, pool: F32, picks: Sequence[int] | I64) -> F64:
    """Each pick's float64 distance to the pool and the picks before it (+inf with neither)."""
    picked = Rows.of(cands, np.asarray(picks, dtype=np.int64))
    k = picked.values.shape[0]
    best = np.full(k, np.inf)
    for a in range(0, pool.shape[0], CHECK_POOL_ROWS):
        other = Rows.of(pool, a, min(pool.shape[0], a + CHECK_POOL_ROWS))
        np.minimum(best, squared_distances64(picked, other).min(axis=1), out=best)
    if k > 1:
        among = squared_distances64(picked, picked)
        among[np.triu_indices(k)] = np.inf  # only earlier picks count
        np.minimum(best, among.min(axis=1), out=best)
    out: F64 = np.sqrt(best)
    return out
