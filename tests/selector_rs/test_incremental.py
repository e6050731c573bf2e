"""selector_rs.IncrementalSelector: the same picks as select_diverse over the blocks concatenated.

Distances are checked against the float64 reference (tests/greedy_reference.py): the core
sums squares in float32, and the tolerance the selection promises is 2e-4 relative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from greedy_reference import replay64
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from selector_rs_support import f32, incremental, no_pool
from synthetic_embeddings import pool_and_candidates

import selector_rs

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# What the selection promises: each pick's D is the largest remaining D to 2e-4 relative.
RTOL = 2e-4
# Squares of values below ~1e-19 underflow in float32; nothing in these tests is that small,
# but a distance that should be 0 may come out as a few 1e-7 of the data's scale.
ATOL = 1e-6


def close(got: float, want: float) -> bool:
    return got == want or abs(got - want) <= RTOL * max(abs(got), abs(want)) + ATOL


def check_exact(
    cands: F32, pool: F32, n_samples: int, min_distance: float, picks: list[int], distances: list[float]
) -> None:
    """Replays the picks in float64: each is the farthest remaining candidate (to RTOL), its
    reported distance is its float64 distance, and the selection stopped only when allowed.
    """
    n = cands.shape[0]
    assert len(picks) == len(distances) <= min(n_samples, n)
    assert len(set(picks)) == len(picks), f"repeated pick in {picks}"
    assert all(0 <= i < n for i in picks)
    replay = replay64(cands, pool, picks)
    for step, (i, reported) in enumerate(zip(picks, distances, strict=True)):
        got = float(replay.pick_distances[step])
        best = max(got, float(replay.remaining_max[step]))
        assert close(got, best), f"step {step}: picked {i} at D={got}, max remaining {best}"
        assert close(reported, got), f"step {step}: reported {reported}, float64 {got}"
        assert reported >= min_distance, f"step {step}: D={reported} < min_distance {min_distance}"
    if len(picks) < min(n_samples, n):
        left = float(replay.remaining_max[len(picks)])
        assert left < min_distance or close(left, min_distance), f"stopped with D={left} left"


def run_select(
    sel: selector_rs.IncrementalSelector, n_samples: int, min_distance: float, order: Any = None
) -> tuple[list[int], list[float]]:
    idx, dist = sel.select(n_samples, min_distance, order)
    assert idx.dtype == np.int64 and dist.dtype == np.float64
    assert idx.shape == dist.shape and idx.ndim == 1
    return [int(i) for i in idx], [float(x) for x in dist]


def split_rows(a: F32, cuts: list[int]) -> list[F32]:
    """``a`` cut at the given row positions (clipped and sorted); empty blocks allowed."""
    points = sorted(min(c, a.shape[0]) for c in cuts)
    return [np.ascontiguousarray(x) for x in np.split(a, points)]


def concat(blocks: list[F32], d: int) -> F32:
    return np.concatenate(blocks) if blocks else np.empty((0, d), dtype=np.float32)


def near_duplicate_runs(rng: np.random.Generator, n: int, d: int, centres: F32, noise: float) -> F32:
    """Runs of rows drifting slowly around a few centres, like frames of a video; with
    ``noise`` 0 a run's rows repeat exactly (real ties)."""
    out = np.empty((n, d), dtype=np.float32)
    i = 0
    while i < n:
        run = min(int(rng.integers(1, 12)), n - i)
        centre = centres[int(rng.integers(centres.shape[0]))]
        step = rng.standard_normal(d) * 0.01
        for k in range(run):
            out[i + k] = centre + k * step + rng.standard_normal(d) * noise
        i += run
    return out


@st.composite
def problems(draw: st.DrawFn) -> tuple[F32, F32, list[int], int, float]:
    """(candidates, pool, cut points, n_samples, min_distance); pool may be (0, 0)."""
    n = draw(st.integers(0, 50))
    p = draw(st.integers(0, 25))
    d = draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["integral", "float", "runs", "video"]))
    if kind == "integral":
        # Every distance exact in float32 and float64: ties are real ties.
        elements = st.integers(-2, 2).map(float)
        cands = draw(hnp.arrays(np.float32, (n, d), elements=elements))
        pool = draw(hnp.arrays(np.float32, (p, d), elements=elements))
    elif kind == "float":
        elements = st.floats(-10, 10, width=32, allow_subnormal=False)
        cands = draw(hnp.arrays(np.float32, (n, d), elements=elements))
        pool = draw(hnp.arrays(np.float32, (p, d), elements=elements))
    elif kind == "runs":
        rng = np.random.default_rng(draw(st.integers(0, 2**32)))
        centres = rng.uniform(-5, 5, (draw(st.integers(1, 4)), d)).astype(np.float32)
        noise = draw(st.sampled_from([0.0, 1e-3, 0.05]))
        cands = near_duplicate_runs(rng, n, d, centres, noise)
        pool = near_duplicate_runs(rng, p, d, centres, noise)
    else:
        frames = draw(st.sampled_from([(1, 5), (5, 30)]))
        pool, cands = pool_and_candidates(p, n, d, draw(st.integers(0, 1000)), scene_frames=frames)
    if p == 0 and draw(st.booleans()):
        pool = no_pool()
    cuts = draw(st.lists(st.integers(0, n), max_size=4))
    n_samples = draw(st.integers(0, 60))
    min_distance = draw(st.one_of(st.just(0.0), st.floats(0, 3), st.sampled_from([0.5, 1.0, 2.0])))
    return cands, pool, cuts, n_samples, min_distance


@settings(max_examples=150, deadline=None)
@given(problems())
def test_same_picks_as_select_diverse(problem: tuple[F32, F32, list[int], int, float]) -> None:
    cands, pool, cuts, n_samples, min_distance = problem
    blocks = split_rows(cands, cuts)
    sel = incremental(pool, blocks)
    assert sel.blocks == len(blocks)
    assert sel.rows == cands.shape[0]
    assert sel.pool_rows == pool.shape[0]
    picks, distances = run_select(sel, n_samples, min_distance)
    want = selector_rs.select_diverse(cands, pool, n_samples, min_distance)
    assert picks == [int(i) for i in want]
    check_exact(cands, pool, n_samples, min_distance, picks, distances)
    # Selecting again, from the same prepared blocks, changes nothing.
    assert run_select(sel, n_samples, min_distance) == (picks, distances)


@settings(max_examples=100, deadline=None)
@given(problems(), st.data())
def test_order_selects_over_those_blocks_in_that_order(
    problem: tuple[F32, F32, list[int], int, float], data: st.DataObject
) -> None:
    cands, pool, cuts, n_samples, min_distance = problem
    blocks = split_rows(cands, cuts)
    sel = incremental(pool, blocks)
    order = data.draw(st.permutations(range(len(blocks))))
    order = order[: data.draw(st.integers(0, len(order)))]
    chosen = concat([blocks[b] for b in order], cands.shape[1])
    picks, distances = run_select(sel, n_samples, min_distance, order)
    want = selector_rs.select_diverse(chosen, pool, n_samples, min_distance)
    assert picks == [int(i) for i in want]
    # An index counts rows of the chosen blocks, concatenated in `order`.
    starts = np.cumsum([0] + [blocks[b].shape[0] for b in order])
    for i in picks:
        k = int(np.searchsorted(starts, i, side="right")) - 1
        np.testing.assert_array_equal(chosen[i], blocks[order[k]][i - starts[k]])
    check_exact(chosen, pool, n_samples, min_distance, picks, distances)


def test_explicit_order_and_subset() -> None:
    a, b, c = f32([[0, 0], [1, 0]]), f32([[10, 0]]), f32([[0, 7], [0, 3]])
    sel = incremental(f32([[0, 0]]), [a, b, c])
    # Farthest from the pool first: (10, 0), then (0, 7), ...
    idx, dist = sel.select(10, 0.0)
    assert idx.tolist() == [2, 3, 4, 1, 0]
    np.testing.assert_allclose(dist, [10.0, 7.0, 3.0, 1.0, 0.0])
    idx, _ = sel.select(10, 0.0, order=[2, 1])  # rows (0,7), (0,3), (10,0)
    assert idx.tolist() == [2, 0, 1]
    idx, _ = sel.select(10, 0.0, order=np.array([0]))
    assert idx.tolist() == [1, 0]
    idx, dist = sel.select(10, 0.0, order=[])
    assert idx.shape == dist.shape == (0,)
    idx, dist = sel.select(2, 5.0)
    assert idx.tolist() == [2, 3]


def test_blocks_can_be_added_after_selecting() -> None:
    sel = incremental(no_pool(), [f32([[0.0], [1.0]])])
    assert sel.select(5, 0.0)[0].tolist() == [0, 1]
    assert sel.add(f32([[5.0]])) == 1
    idx, dist = sel.select(5, 0.0)
    assert idx.tolist() == [0, 2, 1]
    assert dist.tolist() == [np.inf, 5.0, 1.0]


def test_zero_by_zero_pool_takes_its_width_from_the_first_block() -> None:
    sel = selector_rs.IncrementalSelector(no_pool())
    assert (sel.rows, sel.blocks, sel.pool_rows) == (0, 0, 0)
    idx, dist = sel.select(3, 0.0)
    assert idx.shape == dist.shape == (0,)
    assert sel.add(f32([[3, 4, 0], [0, 0, 0]])) == 0
    with pytest.raises(ValueError, match="vectors has 2 columns, but this selector's rows have 3"):
        sel.add(f32([[1, 2]]))
    assert sel.add(np.empty((0, 3), dtype=np.float32)) == 1
    assert sel.add(f32([[0, 0, 1]])) == 2
    assert (sel.rows, sel.blocks, sel.pool_rows) == (3, 3, 0)
    idx, dist = sel.select(3, 0.0)
    assert idx.tolist() == [0, 2, 1]
    np.testing.assert_allclose(dist, [np.inf, np.sqrt(26.0), 1.0])


def rss_anon_bytes() -> int:
    """This process's anonymous resident memory (a copy of a file-backed array lands here)."""
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("RssAnon:"))
    return int(kib) * 1024


def test_blocks_are_read_in_place_not_copied(tmp_path: Path) -> None:
    """100 MB of file-backed candidates cost the selector only its per-row bounds."""
    rows, dim = 100_000, 256
    path = tmp_path / "spill.f32"
    written = np.memmap(path, dtype=np.float32, mode="w+", shape=(rows, dim))
    for start in range(0, rows, 20_000):
        part = np.arange(start, start + 20_000, dtype=np.float32)[:, None] % 977
        written[start : start + 20_000] = part + np.arange(dim, dtype=np.float32) * 1e-3
    written.flush()
    del written
    block = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))
    sel = selector_rs.IncrementalSelector(no_pool())
    before = rss_anon_bytes()
    sel.add(block[: rows // 2])
    sel.add(block[rows // 2 :])
    idx, _ = sel.select(5, 0.0)
    grown = rss_anon_bytes() - before
    assert len(idx) == 5
    # A copy would be 100 MB; what stays is tens of bytes per row.
    assert grown < 40 * 2**20, f"RssAnon grew by {grown / 2**20:.0f} MiB for 100 MiB of candidates"


@pytest.mark.parametrize("dim", [64, 256])
def test_exact_on_video_like_data(dim: int) -> None:
    """Each pick is the farthest remaining candidate in float64, to 2e-4 relative; the
    min_distance stop comes exactly where the distances fall below it."""
    pool, cands = pool_and_candidates(500, 3_000, dim, seed=dim)
    blocks = split_rows(cands, [700, 1_500, 1_501, 2_200])
    sel = incremental(pool, blocks)
    picks, distances = run_select(sel, 100, 0.0)
    assert len(picks) == 100
    assert picks == [int(i) for i in selector_rs.select_diverse(cands, pool, 100, 0.0)]
    check_exact(cands, pool, 100, 0.0, picks, distances)

    # A threshold halfway between two consecutive pick distances stops right there.
    k = 60
    threshold = (distances[k - 1] + distances[k]) / 2
    if distances[k - 1] > distances[k]:
        stopped, stopped_d = run_select(sel, 100, threshold)
        assert stopped == picks[:k]
        assert stopped_d == distances[:k]
        check_exact(cands, pool, 100, threshold, stopped, stopped_d)
    # At exactly a pick's distance, that pick is still made.
    at, _ = run_select(sel, 100, distances[k])
    assert len(at) > k
    assert at[: k + 1] == picks[: k + 1]
