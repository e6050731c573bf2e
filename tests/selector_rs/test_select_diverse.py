"""selector_rs.select_diverse against a float64 NumPy reference of the same greedy rule.

The core sums squared differences in float32 (the square root is taken in float64), so
its distances differ from the reference's by float32 rounding; the selection promises
each pick's distance is the largest remaining to 2e-4 relative.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import selector_rs

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# Relative tolerance for "this pick's D is the largest remaining D": what the selection
# promises with float32 sums of squares.
RTOL = 2e-4
# Below this relative gap two candidates count as tied: sums rounded to float32 (in the
# core) and float64 (here) may rank them either way. Float32 rounding of these small
# problems is a few 1e-7, so this is far looser than needed, yet within the promise.
TIE = RTOL
# Distances below ~1e-22 underflow in float32 squares (the data may hold values down to
# 1.2e-38): any two such distances count as equal.
ATOL = 1e-18


def remaining_distances(cands: F32, pool: F32, picks: list[int]) -> F64:
    """D(i) in float64 for every candidate, from scratch; -inf marks those already picked."""
    c = cands.astype(np.float64)
    d = c.shape[1]
    pool64 = pool.astype(np.float64) if pool.shape[0] else np.empty((0, d))
    others = np.concatenate([pool64, c[picks]])
    if others.shape[0] == 0:
        dist = np.full(c.shape[0], np.inf)
    else:
        dist = np.sqrt(((c[:, None, :] - others[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    dist[picks] = -np.inf
    return dist


def reference_select(cands: F32, pool: F32, n_samples: int, min_distance: float) -> list[int]:
    picks: list[int] = []
    while len(picks) < min(n_samples, cands.shape[0]):
        dist = remaining_distances(cands, pool, picks)
        best = int(np.argmax(dist))  # first maximum: the lowest index wins ties
        if dist[best] < min_distance:
            break
        picks.append(best)
    return picks


def close(a: float, b: float, rtol: float) -> bool:
    return a == b or abs(a - b) <= rtol * max(abs(a), abs(b)) + ATOL


def check_path(cands: F32, pool: F32, n_samples: int, min_distance: float, picks: list[int]) -> None:
    """Replays `picks` against the reference D values, step by step.

    Judging each pick given the earlier ones stays meaningful after a near-tie has sent
    the two implementations down different (equally valid) paths.
    """
    budget = min(n_samples, cands.shape[0])
    assert len(picks) <= budget
    assert len(set(picks)) == len(picks), f"repeated pick in {picks}"
    for step, i in enumerate(picks):
        dist = remaining_distances(cands, pool, picks[:step])
        want = int(np.argmax(dist))
        got_d, want_d = float(dist[i]), float(dist[want])
        assert close(got_d, want_d, RTOL), f"step {step}: D={got_d}, max remaining {want_d}"
        assert i == want or close(got_d, want_d, TIE), f"step {step}: picked {i}, reference {want}"
        assert got_d >= min_distance or close(got_d, min_distance, TIE)
    if len(picks) < budget:
        left = float(remaining_distances(cands, pool, picks).max())
        assert left < min_distance or close(left, min_distance, TIE), f"stopped with D={left} left"


def select(cands: Any, pool: Any, n_samples: Any, min_distance: Any) -> list[int]:
    out = selector_rs.select_diverse(cands, pool, n_samples, min_distance)
    assert out.dtype == np.int64
    assert out.ndim == 1
    return [int(i) for i in out]


@st.composite
def problems(draw: st.DrawFn) -> tuple[F32, F32, int, float, bool]:
    n = draw(st.integers(0, 60))
    p = draw(st.integers(0, 30))
    d = draw(st.integers(1, 16))
    # Small integers make every distance exact in float64, so ties are real ties and
    # the picks must equal the reference's exactly; floats exercise rounding.
    integral = draw(st.booleans())
    elements = (
        st.integers(-3, 3).map(float) if integral else st.floats(-10, 10, width=32, allow_subnormal=False)
    )
    cands = draw(hnp.arrays(np.float32, (n, d), elements=elements))
    pool = draw(hnp.arrays(np.float32, (p, d), elements=elements))
    n_samples = draw(st.integers(0, 70))
    # Thresholds taken from the distances the selection actually meets (including
    # exactly at one of them) make the min_distance stop happen often.
    seen = remaining_distances(cands, pool, [])
    finite = seen[np.isfinite(seen)]
    scale = float(finite.max()) if finite.size else 5.0
    min_distance = draw(
        st.one_of(
            st.just(0.0),
            st.floats(0, 1.2 * scale),
            st.sampled_from([float(x) for x in finite]) if finite.size else st.just(1.0),
        )
    )
    return cands, pool, n_samples, min_distance, integral


@settings(max_examples=250, deadline=None)
@given(problems())
def test_matches_float64_reference(problem: tuple[F32, F32, int, float, bool]) -> None:
    cands, pool, n_samples, min_distance, integral = problem
    picks = select(cands, pool, n_samples, min_distance)
    check_path(cands, pool, n_samples, min_distance, picks)
    if integral:
        assert picks == reference_select(cands, pool, n_samples, min_distance)


@settings(max_examples=50, deadline=None)
@given(problems())
def test_zero_min_distance_picks_the_whole_budget(problem: tuple[F32, F32, int, float, bool]) -> None:
    cands, pool, n_samples, _, _ = problem
    picks = select(cands, pool, n_samples, 0.0)
    assert len(picks) == min(n_samples, cands.shape[0])
    assert sorted(set(picks)) == sorted(picks)


def f32(rows: list[list[float]]) -> F32:
    return np.array(rows, dtype=np.float32)


def no_pool(d: int) -> F32:
    return np.empty((0, d), dtype=np.float32)


def test_first_pick_without_pool_is_candidate_zero() -> None:
    assert select(f32([[5.0], [0.0], [9.0]]), no_pool(1), 1, 0.0) == [0]


def test_zero_by_zero_pool_means_no_pool() -> None:
    cands = f32([[0.0, 1.0], [4.0, 1.0], [2.0, 1.0]])
    assert select(cands, np.empty((0, 0), dtype=np.float32), 3, 0.0) == [0, 1, 2]
    assert select(cands, no_pool(2), 3, 0.0) == [0, 1, 2]


def test_ties_go_to_the_lowest_index() -> None:
    # From candidate 0, candidates 2 and 3 are both at distance 1 (candidate 1 at 0.5).
    cands = f32([[0, 0], [0.5, 0], [0, 1], [-1, 0]])
    assert select(cands, no_pool(2), 4, 0.0) == [0, 2, 3, 1]


def test_candidate_exactly_at_min_distance_is_picked() -> None:
    cands = f32([[0, 0], [3, 4], [0, 1]])
    pool = f32([[0, -5]])
    # D from the pool: 5, sqrt(90), 6; after candidate 1, candidate 0 is exactly 5 away.
    assert select(cands, pool, 10, 5.0) == [1, 0]
    assert select(cands, pool, 10, np.nextafter(5.0, 6.0)) == [1]


def test_candidate_equal_to_pool_row_needs_zero_min_distance() -> None:
    cands = f32([[1, 2], [7, 7]])
    pool = f32([[1, 2], [7, 7]])
    assert select(cands, pool, 2, 1e-9) == []
    assert select(cands, pool, 2, 0.0) == [0, 1]


def test_n_samples_beyond_n_and_empty_inputs() -> None:
    cands = f32([[0.0], [1.0], [2.0]])
    assert select(cands, no_pool(1), 100, 0.0) == [0, 2, 1]
    assert select(cands, no_pool(1), 2**80, 0.0) == [0, 2, 1]
    assert select(cands, no_pool(1), 0, 0.0) == []
    empty = selector_rs.select_diverse(no_pool(4), no_pool(4), 5, 0.0)
    assert empty.dtype == np.int64
    assert empty.shape == (0,)


def test_read_only_and_numpy_scalar_arguments_are_accepted() -> None:
    cands = f32([[0.0], [3.0], [1.0]])
    cands.flags.writeable = False
    assert select(cands, no_pool(1), np.int64(2), np.float32(0.5)) == [0, 1]


def test_module_metadata() -> None:
    assert isinstance(selector_rs.__version__, str)
    assert selector_rs.__version__.count(".") == 2
    assert selector_rs.select_diverse.__doc__
    assert selector_rs.kernel in {"avx512", "avx2+fma", "portable"}
    assert selector_rs.IncrementalSelector.__doc__


def test_values_up_to_1e15_are_accepted() -> None:
    # Differences of 2e15 squared and summed still fit in float32; the picks are exact.
    cands = f32([[1e15, -1e15], [0, 0], [-1e15, -1e15]])
    pool = f32([[1e15, 1e15]])
    assert select(cands, pool, 3, 0.0) == [2, 0, 1]
    # The same in units of 1e15, where every distance is exact.
    assert select(cands / np.float32(1e15), pool / np.float32(1e15), 3, 0.0) == [2, 0, 1]


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


def test_gil_is_released_during_selection() -> None:
    rng = np.random.default_rng(0)
    cands = rng.standard_normal((40_000, 64), dtype=np.float32)
    window: dict[str, float] = {}

    def work() -> None:
        window["start"] = time.perf_counter()
        selector_rs.select_diverse(cands, no_pool(64), 300, 0.0)
        window["end"] = time.perf_counter()

    worker = threading.Thread(target=work)
    ticks: list[float] = []
    worker.start()
    # Each tick needs the GIL; had the selection kept it, no tick could land inside it.
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    start, end = window["start"], window["end"]
    assert end - start > 0.05, "selection finished too quickly to tell"
    margin = 0.01
    inside = [t for t in ticks if start + margin < t < end - margin]
    assert len(inside) >= 5, f"{len(inside)} ticks during a {end - start:.3f} s selection"
