"""selector_rs.select_diverse refuses bad input with a ValueError that names the argument,
and the row and column of a bad value."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import selector_rs

F32 = npt.NDArray[np.float32]


def f32(rows: list[list[float]]) -> F32:
    return np.array(rows, dtype=np.float32)


def _bad(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "candidates": f32([[0, 0], [1, 1], [2, 2]]),
        "pool": f32([[5, 5]]),
        "n_samples": 2,
        "min_distance": 0.0,
    }
    args.update(changes)
    return args


def _with_nan(row: int) -> F32:
    a = np.zeros((4, 2), dtype=np.float32)
    a[row, 1] = np.nan
    return a


def _with_inf(row: int) -> F32:
    a = np.zeros((3, 2), dtype=np.float32)
    a[row, 0] = -np.inf
    return a


def _with_value(rows: int, row: int, col: int, value: float) -> F32:
    a = np.zeros((rows, 2), dtype=np.float32)
    a[row, col] = value
    return a


def _misaligned() -> F32:
    raw = np.frombuffer(bytearray(4 * 6 + 1), dtype=np.float32, offset=1, count=6).reshape(3, 2)
    assert not raw.flags.aligned
    return raw


BAD_INPUTS: list[tuple[str, Callable[[], dict[str, Any]], str]] = [
    (
        "candidates float64",
        lambda: _bad(candidates=np.zeros((3, 2))),
        "candidates must be float32, got float64",
    ),
    ("pool float64", lambda: _bad(pool=np.zeros((1, 2))), "pool must be float32, got float64"),
    ("pool int", lambda: _bad(pool=np.zeros((1, 2), dtype=np.int32)), "pool must be float32, got int32"),
    (
        "big-endian",
        lambda: _bad(candidates=np.zeros((3, 2), dtype=">f4")),
        "candidates must be float32, got >f4",
    ),
    (
        "candidates 1-D",
        lambda: _bad(candidates=np.zeros(3, dtype=np.float32)),
        "candidates must be a 2-D array, got a 1-D array",
    ),
    (
        "pool 3-D",
        lambda: _bad(pool=np.zeros((1, 1, 2), dtype=np.float32)),
        "pool must be a 2-D array, got a 3-D array",
    ),
    (
        "candidates Fortran order",
        lambda: _bad(candidates=np.asfortranarray(np.ones((3, 2), dtype=np.float32))),
        "candidates must be C-contiguous",
    ),
    (
        "pool strided view",
        lambda: _bad(pool=np.ones((2, 4), dtype=np.float32)[:, ::2]),
        "pool must be C-contiguous",
    ),
    ("candidates misaligned", lambda: _bad(candidates=_misaligned()), "candidates must be aligned"),
    (
        "candidates list",
        lambda: _bad(candidates=[[0.0, 0.0]]),
        "candidates must be a numpy.ndarray, got list",
    ),
    ("pool None", lambda: _bad(pool=None), "pool must be a numpy.ndarray, got NoneType"),
    ("NaN in candidates", lambda: _bad(candidates=_with_nan(2)), "candidates must be finite, but row 2"),
    ("inf in pool", lambda: _bad(pool=_with_inf(1)), "pool must be finite, but row 1"),
    (
        "huge candidate",
        lambda: _bad(candidates=_with_value(3, 1, 1, 2e15)),
        "candidates values must lie within ±1e15 (distances are summed in float32), "
        "but row 1 has 2e15 in column 1",
    ),
    (
        "huge negative pool value",
        lambda: _bad(pool=_with_value(2, 1, 0, -3.5e20)),
        "pool values must lie within ±1e15",
    ),
    (
        "float32 max in pool",
        lambda: _bad(pool=_with_value(1, 0, 1, float(np.finfo(np.float32).max))),
        "pool values must lie within ±1e15",
    ),
    # The first bad value by position is the one reported.
    (
        "huge before NaN",
        lambda: _bad(candidates=np.array([[0, 0], [-5e15, np.nan], [np.inf, 0]], dtype=np.float32)),
        "candidates values must lie within ±1e15 (distances are summed in float32), "
        "but row 1 has -5e15 in column 0",
    ),
    (
        "NaN before huge",
        lambda: _bad(candidates=np.array([[0, 0], [np.nan, -5e15], [0, 0]], dtype=np.float32)),
        "candidates must be finite, but row 1 has NaN in column 0",
    ),
    (
        "width mismatch",
        lambda: _bad(pool=np.zeros((1, 3), dtype=np.float32)),
        "candidates and pool must have the same number of columns",
    ),
    (
        "empty pool of another width",
        lambda: _bad(pool=np.zeros((0, 3), dtype=np.float32)),
        "candidates has 2 and pool has 3",
    ),
    ("negative n_samples", lambda: _bad(n_samples=-1), "n_samples must be >= 0, got -1"),
    ("huge negative n_samples", lambda: _bad(n_samples=-(2**70)), "n_samples must be >= 0"),
    ("float n_samples", lambda: _bad(n_samples=2.0), "n_samples must be an int, got float"),
    ("NaN min_distance", lambda: _bad(min_distance=float("nan")), "min_distance must be finite and >= 0"),
    ("negative min_distance", lambda: _bad(min_distance=-0.5), "min_distance must be finite and >= 0"),
    ("inf min_distance", lambda: _bad(min_distance=float("inf")), "min_distance must be finite and >= 0"),
    ("str min_distance", lambda: _bad(min_distance="1"), "min_distance must be a float, got str"),
]


@pytest.mark.parametrize(
    ("make_args", "message"), [(m, s) for _, m, s in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS]
)
def test_bad_input_raises_value_error(make_args: Callable[[], dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        selector_rs.select_diverse(**make_args())
