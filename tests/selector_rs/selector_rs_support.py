"""Small helpers for the selector_rs tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import selector_rs

F32 = npt.NDArray[np.float32]


def f32(rows: list[list[float]]) -> F32:
    return np.array(rows, dtype=np.float32)


def no_pool() -> F32:
    """The (0, 0) pool: no pool, and the width is left to the candidates."""
    return np.empty((0, 0), dtype=np.float32)


def incremental(pool: F32, blocks: list[F32]) -> selector_rs.IncrementalSelector:
    """An IncrementalSelector over `pool` with `blocks` added in order."""
    sel = selector_rs.IncrementalSelector(pool)
    for b, block in enumerate(blocks):
        assert sel.add(block) == b
    return sel
