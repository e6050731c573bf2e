"""Exact greedy farthest-point selection of the most diverse rows, in Rust."""

import numpy as np
import numpy.typing as npt

__version__: str

def select_diverse(
    candidates: npt.NDArray[np.float32],
    pool: npt.NDArray[np.float32],
    n_samples: int,
    min_distance: float,
) -> npt.NDArray[np.int64]:
    """Pick up to ``n_samples`` candidate rows, farthest first.

    ``D(i)`` is the Euclidean distance from candidate ``i`` to its nearest row among
    ``pool`` and the candidates already picked. Each step picks the unpicked candidate
    with the largest ``D`` (the lowest index on ties); with an empty pool the first pick
    is candidate 0. Selection stops after ``n_samples`` picks, when no candidates are
    left, or when the largest ``D`` is strictly below ``min_distance``.

    Args:
        candidates: float32, C-contiguous, shape (N, d).
        pool: float32, C-contiguous, shape (P, d); P may be 0, and a (0, 0) array also
            means "no pool".
        n_samples: maximum number of picks, >= 0.
        min_distance: finite, >= 0; a candidate at exactly this distance is picked.

    Returns:
        int64 candidate row indices in pick order.

    Raises:
        ValueError: on a wrong dtype, rank or memory layout, NaN or inf values,
            mismatched widths, a negative ``n_samples`` or a negative, NaN or
            infinite ``min_distance``. The message names the argument.

    The GIL is released for the whole computation.
    """
