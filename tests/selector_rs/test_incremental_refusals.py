"""selector_rs.IncrementalSelector refuses bad blocks, pools and select arguments with a
ValueError naming the argument, and a refused block is not added."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from selector_rs_support import f32, incremental, no_pool

import selector_rs

F32 = npt.NDArray[np.float32]


def test_empty_pool_with_columns_fixes_the_width() -> None:
    sel = selector_rs.IncrementalSelector(np.empty((0, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="vectors has 3 columns, but this selector's rows have 4"):
        sel.add(np.zeros((2, 3), dtype=np.float32))
    assert sel.blocks == 0
    assert sel.add(np.zeros((2, 4), dtype=np.float32)) == 0


def _with_value(rows: int, cols: int, row: int, col: int, value: float) -> F32:
    a = np.zeros((rows, cols), dtype=np.float32)
    a[row, col] = value
    return a


ADD_ERRORS: list[tuple[str, Any, str]] = [
    ("width", np.zeros((2, 3), dtype=np.float32), "vectors has 3 columns, but this selector's rows have 2"),
    ("NaN", _with_value(5, 2, 3, 1, np.nan), "vectors must be finite, but row 3 has NaN in column 1"),
    ("-inf", _with_value(2, 2, 1, 0, -np.inf), "vectors must be finite, but row 1 has -inf in column 0"),
    ("huge", _with_value(4, 2, 2, 1, 3e15), "vectors values must lie within ±1e15"),
    ("float64", np.zeros((2, 2)), "vectors must be float32, got float64"),
    ("1-D", np.zeros(2, dtype=np.float32), "vectors must be a 2-D array, got a 1-D array"),
    ("Fortran", np.asfortranarray(np.ones((3, 2), dtype=np.float32)), "vectors must be C-contiguous"),
    ("list", [[0.0, 0.0]], "vectors must be a numpy.ndarray, got list"),
]


@pytest.mark.parametrize(
    ("vectors", "message"), [(v, m) for _, v, m in ADD_ERRORS], ids=[i for i, _, _ in ADD_ERRORS]
)
def test_bad_block_is_refused_and_not_added(vectors: Any, message: str) -> None:
    sel = incremental(f32([[1, 1]]), [f32([[0, 0]])])
    with pytest.raises(ValueError, match=re.escape(message)):
        sel.add(vectors)
    assert (sel.blocks, sel.rows) == (1, 1)
    assert sel.select(5, 0.0)[0].tolist() == [0]


def test_huge_value_in_row_is_named() -> None:
    sel = selector_rs.IncrementalSelector(no_pool())
    with pytest.raises(ValueError, match=r"row 2 has -2e16 in column 1"):
        sel.add(_with_value(3, 2, 2, 1, -2e16))
    # Exactly the limit is accepted.
    assert sel.add(_with_value(3, 2, 2, 1, -1e15)) == 0


POOL_ERRORS: list[tuple[str, Any, str]] = [
    ("NaN", _with_value(3, 2, 1, 0, np.nan), "pool must be finite, but row 1 has NaN in column 0"),
    ("huge", _with_value(3, 2, 2, 0, 1e16), "pool values must lie within ±1e15"),
    ("int", np.zeros((1, 2), dtype=np.int32), "pool must be float32, got int32"),
    ("None", None, "pool must be a numpy.ndarray, got NoneType"),
]


@pytest.mark.parametrize(
    ("pool", "message"), [(p, m) for _, p, m in POOL_ERRORS], ids=[i for i, _, _ in POOL_ERRORS]
)
def test_bad_pool_is_refused(pool: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        selector_rs.IncrementalSelector(pool)


SELECT_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("block out of range", {"order": [0, 2]}, "order names block 2, but only blocks 0..2 were added"),
    ("negative block", {"order": [-1]}, "order names block -1, but only blocks 0..2 were added"),
    ("repeated block", {"order": [1, 0, 1]}, "order names block 1 twice"),
    ("negative n_samples", {"n_samples": -1}, "n_samples must be >= 0, got -1"),
    ("float n_samples", {"n_samples": 1.0}, "n_samples must be an int, got float"),
    ("NaN min_distance", {"min_distance": float("nan")}, "min_distance must be finite and >= 0"),
    ("negative min_distance", {"min_distance": -1.0}, "min_distance must be finite and >= 0"),
]


@pytest.mark.parametrize(
    ("changes", "message"), [(c, m) for _, c, m in SELECT_ERRORS], ids=[i for i, _, _ in SELECT_ERRORS]
)
def test_bad_select_arguments(changes: dict[str, Any], message: str) -> None:
    sel = incremental(no_pool(), [f32([[0, 0]]), f32([[1, 1]])])
    args: dict[str, Any] = {"n_samples": 2, "min_distance": 0.0, "order": None}
    args.update(changes)
    with pytest.raises(ValueError, match=re.escape(message)):
        sel.select(**args)
