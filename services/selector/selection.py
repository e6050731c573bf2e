"""The one place that calls selector_rs, plus the pick distances reported to clients."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import selector_rs
from datapool.errors import InvalidArgument
from services.selector.candidates import CandidateSet
from services.selector.model import Pick
from services.selector.state import PoolState, Vectors, empty_vectors

# Block sizes for measuring pick distances: a block of float64 vectors (rows x dim) and
# a block of pairwise distances (rows x picks) each stay under about 80 MB, whatever
# the pool's size or the number of picks.
_POOL_BLOCK_ROWS = 8192
_PAIR_BLOCK_ELEMENTS = 10_000_000


def select_picks(
    candidates: CandidateSet, pool: PoolState, n_samples: int, min_distance: float
) -> list[Pick]:
    """Greedy farthest-point picks among candidates not already pooled."""
    open_rows = candidates.open_rows(pool.identities)
    if n_samples == 0 or len(open_rows) == 0:
        return []
    vectors = np.ascontiguousarray(candidates.vectors[open_rows])
    pool_vectors = pool.embeddings if len(pool.embeddings) else empty_vectors(candidates.dim)
    try:
        chosen = selector_rs.select_diverse(vectors, pool_vectors, n_samples, min_distance)
    except ValueError as e:
        raise InvalidArgument(f"selection rejected its input: {e}") from e
    chosen = np.asarray(chosen, dtype=np.int64)
    distances = pick_distances(vectors[chosen], pool_vectors)
    picks = []
    for local, distance in zip(chosen.tolist(), distances.tolist(), strict=True):
        row = int(open_rows[local])
        identity = candidates.identities[row]
        picks.append(
            Pick(
                file=identity.file,
                frame_index=identity.frame_index,
                frame_name=candidates.frame_names[row],
                distance=distance,
                row=row,
            )
        )
    return picks


def pick_distances(picked: Vectors, pool: Vectors) -> npt.NDArray[np.float64]:
    """For each pick in order: its L2 distance to the pool and all earlier picks."""
    picked64 = picked.astype(np.float64)
    nearest = np.full(len(picked64), np.inf)
    step = max(1, min(_POOL_BLOCK_ROWS, _PAIR_BLOCK_ELEMENTS // max(len(picked64), 1)))
    for start in range(0, len(pool), step):
        nearest = np.minimum(nearest, _min_distances(picked64, pool[start : start + step]))
    for start in range(0, len(picked64), step):
        stop = min(start + step, len(picked64))
        rows = picked64[start:stop]
        # Only picks made before row i count for row i.
        later = np.arange(stop)[None, :] >= np.arange(start, stop)[:, None]
        earlier = _min_distances(rows, picked64[:stop], exclude=later)
        nearest[start:stop] = np.minimum(nearest[start:stop], earlier)
    return nearest


def _min_distances(
    a: npt.NDArray[np.float64],
    block: npt.NDArray[np.floating],
    exclude: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float64]:
    b = block.astype(np.float64)
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    if exclude is not None:
        squared[exclude] = np.inf
    result: npt.NDArray[np.float64] = np.sqrt(np.maximum(squared, 0.0)).min(axis=1, initial=np.inf)
    return result
