"""Exact greedy farthest-point selection of the most diverse rows, in Rust."""

from collections.abc import Callable, Sequence
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt

__all__ = ["Cancelled", "IncrementalSelector", "__version__", "kernel", "select_diverse", "worker_threads"]

__version__: str

class Cancelled(Exception):
    """The caller's ``stop`` callable returned true: the call gave up and returned nothing."""

kernel: str
"""The instruction set the distance kernel uses on this machine ("avx512", "avx2+fma"
or "portable"), for benchmark reports."""

def worker_threads() -> int:
    """Starts the selection's worker threads if they are not running yet and returns their
    number. They start from the calling thread and take its scheduling priority (on Linux its
    nice value): a thread that lowered its own priority first makes every later selection, on
    any thread, yield the CPU to threads at the normal priority."""

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

    Squared distances are summed in float32 (the square root is taken in float64), so
    "largest" holds to float32 rounding, a few 1e-7 relative.

    Args:
        candidates: float32, C-contiguous, shape (N, d).
        pool: float32, C-contiguous, shape (P, d); P may be 0, and a (0, 0) array also
            means "no pool".
        n_samples: maximum number of picks, >= 0.
        min_distance: finite, >= 0; a candidate at exactly this distance is picked.

    Returns:
        int64 candidate row indices in pick order.

    Raises:
        ValueError: on a wrong dtype, rank or memory layout, NaN or inf values, values
            beyond ±1e15 (their squared differences could overflow float32), mismatched
            widths, a negative ``n_samples`` or a negative, NaN or infinite
            ``min_distance``. The message names the argument (and, for bad values,
            the row and column).
        KeyboardInterrupt: Ctrl-C (or any exception a signal handler raises) during the
            call propagates promptly (signals are checked about every 50 ms while the
            GIL is released); nothing is returned.

    The GIL is released for the whole computation, input checks included.
    """

@final
class IncrementalSelector:
    """Greedy selection over candidates that arrive in blocks.

    Each ``add`` keeps a reference to the caller's block, without copying it (a block
    may be a ``numpy.memmap`` of a file larger than RAM), checks it and measures it
    against the pool right away (without the GIL), so that by the time the last block is
    in only the greedy loop is left for ``select``, which reads the blocks where they
    are. The pool is kept by reference too. Neither may be written to afterwards: the
    measurements made in ``add`` would no longer hold. ``select`` gives the same picks as
    ``select_diverse`` over the chosen blocks concatenated, and can be called any number
    of times, with any blocks.

    Args:
        pool: float32, C-contiguous, shape (P, d); the rows the picks must be far from.
            P may be 0; a (0, 0) array means "no pool" and leaves the width to the
            first block added.

    Raises:
        ValueError: as ``select_diverse`` for ``pool`` (dtype, rank, layout, NaN, inf,
            values beyond ±1e15).
        KeyboardInterrupt: Ctrl-C while the pool is being indexed.
    """

    def __new__(cls, pool: npt.NDArray[np.float32]) -> IncrementalSelector: ...
    def add(self, vectors: npt.NDArray[np.float32]) -> int:
        """Keep ``vectors`` (float32, C-contiguous, shape (N, d)) as the next block, by
        reference: no copy is made, and the array must not be written to afterwards.

        The block is checked and measured against the pool before this returns, with
        the GIL released. A block may have no rows.

        Returns:
            The block's id: 0 for the first block added, then 1, 2, ...

        Raises:
            ValueError: on a wrong dtype, rank or layout, NaN or inf values or values
                beyond ±1e15 (naming ``vectors`` and the row), or a width other than
                the pool's or the earlier blocks'. Nothing is added.
            KeyboardInterrupt: Ctrl-C while the block is being measured; nothing is
                added.
        """

    def select(
        self,
        n_samples: int,
        min_distance: float,
        order: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None,
        stop: Callable[[], object] | None = None,
        strategy: Literal["auto", "pruned", "dense"] = "auto",
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Greedy picks over the blocks in ``order``, as ``select_diverse`` would make them.

        Args:
            n_samples: maximum number of picks, >= 0.
            min_distance: finite, >= 0; a candidate at exactly this distance is picked.
            order: block ids (a sequence of ints or an integer array) to select over,
                each at most once, in the order their rows are concatenated (this order
                decides ties, and the first pick when there is no pool). Default: every
                block, in the order added. A subset leaves the other blocks out.
            stop: called about every 50 ms while the selection runs (with the GIL
                held, from the calling thread); once it returns a true value the call
                raises ``Cancelled``. Signal handlers only run on the main thread, so
                this is how a server thread ends a selection whose request was
                cancelled.
            strategy: ``"auto"`` (the default) prunes with triangle-inequality bounds
                while that pays, measured during the call: once searching the pool row
                by row has cost as much as a blocked GEMM pass over it would, that pass
                runs instead, and once the pruned loop is projected to take longer than
                the dense path (the GEMM pass, then a lazy greedy loop over exact
                distances), the call switches to it. ``"pruned"`` and ``"dense"`` force
                one path (benchmarks, tests). Every path gives the same picks and
                distances: all distances are confirmed with the one float32 kernel.

        Returns:
            ``(indices, distances)``: int64 row indices into the chosen blocks
            concatenated in ``order``, in pick order, and each pick's float64 distance
            to its nearest pool row or earlier pick (``inf`` for the first pick when
            there is no pool).

        Raises:
            ValueError: a negative ``n_samples``, a negative, NaN or infinite
                ``min_distance``, or an ``order`` naming a block that was not added or
                naming a block twice.
            KeyboardInterrupt: Ctrl-C during the selection, promptly (signals are
                checked about every 50 ms).
            Cancelled: ``stop()`` returned true; an exception ``stop`` raises
                propagates instead.
        """

    @property
    def rows(self) -> int:
        """Number of candidate rows added so far, over all blocks."""

    @property
    def blocks(self) -> int:
        """Number of blocks added so far."""

    @property
    def pool_rows(self) -> int:
        """Number of pool rows."""

    @property
    def gemm_rows(self) -> int:
        """Rows that ``add`` measured against the pool by the GEMM pass (exactly), because
        bounding them through their group leaders was measured to cost more (data that
        does not group, such as uniform rows)."""

    @property
    def last_switch(self) -> int | None:
        """Picks the last ``select`` had made on the pruned path when it measured that the
        dense path would finish sooner and switched to it (0 with ``strategy="dense"``);
        ``None`` if it never switched."""

    @property
    def last_pool_pass(self) -> int | None:
        """Picks the last ``select`` had made when it measured that searching the pool row
        by row had cost as much as a GEMM pass over the rows left would, and ran that
        pass; ``None`` if it never did."""
