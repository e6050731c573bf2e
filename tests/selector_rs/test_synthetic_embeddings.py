"""The synthetic video-frame embeddings have the structure the selection benchmark relies on."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rough_shape
from embedding_stats import pairwise, statistics
from synthetic_embeddings import (
    ROUGH,
    pool_and_candidates,
    scene_lengths,
    uniform_sphere,
    video_like,
)

F32 = npt.NDArray[np.float32]


def nearest(rows: F32, others: F32) -> npt.NDArray[np.float64]:
    """Distance from each of ``rows`` to its nearest row of ``others``, in float64."""
    a, b = rows.astype(np.float64), others.astype(np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    out: npt.NDArray[np.float64] = np.sqrt(np.maximum(d2, 0.0)).min(axis=1)
    return out


REAL = json.loads((Path(__file__).parents[2] / "bench" / "data" / "real_feature_stats.json").read_text())
REAL_STATS: dict[str, list[float]] = REAL["statistics"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: video_like(3_000, 96, 7),
        lambda: video_like(3_000, 96, 7, shape="rough"),
        lambda: video_like(3_000, 96, 7, shape="hard"),
        lambda: uniform_sphere(3_000, 96, 7),
    ],
)
def test_shape_dtype_unit_norms_and_determinism(make: Callable[[], F32]) -> None:
    x = make()
    assert x.shape == (3_000, 96)
    assert x.dtype == np.float32
    assert x.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(x, make())


def test_seeds_differ() -> None:
    assert not np.array_equal(video_like(500, 32, 1), video_like(500, 32, 2))
    assert not np.array_equal(uniform_sphere(500, 32, 1), uniform_sphere(500, 32, 2))


def test_pool_and_candidates_shapes_and_determinism() -> None:
    pool, cands = pool_and_candidates(2_000, 3_000, 64, 3)
    assert pool.shape == (2_000, 64) and cands.shape == (3_000, 64)
    assert pool.dtype == cands.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cands, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(pool, video_like(2_000, 64, 3))
    again = pool_and_candidates(2_000, 3_000, 64, 3)
    np.testing.assert_array_equal(pool, again[0])
    np.testing.assert_array_equal(cands, again[1])
    empty, alone = pool_and_candidates(0, 1_000, 64, 3)
    assert empty.shape == (0, 64) and alone.shape == (1_000, 64)


def test_consecutive_frames_are_near_duplicates() -> None:
    x = video_like(20_000, 256, 0)
    consecutive = np.linalg.norm(x[1:] - x[:-1], axis=1)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(x), 5_000), rng.integers(0, len(x), 5_000)
    random_pairs = np.linalg.norm(x[i] - x[j], axis=1)
    # Most consecutive pairs lie inside a scene; scene cuts are the rare large jumps.
    assert np.median(consecutive) < 0.05
    assert np.median(random_pairs) > 1.0
    assert np.median(consecutive) < np.median(random_pairs) / 20
    # Scenes span a range of inter-scene distances, not all ~sqrt(2) as random vectors.
    assert np.percentile(random_pairs, 1) < 1.0
    uniform = uniform_sphere(2_000, 256, 0)
    assert np.percentile(np.linalg.norm(uniform[:1000] - uniform[1000:], axis=1), 1) > 1.3


@pytest.mark.parametrize("revisit", [0.0, 1.0])
def test_revisited_scenes_are_close_to_the_pool(revisit: float) -> None:
    pool, cands = pool_and_candidates(5_000, 2_000, 256, 5, revisit=revisit)
    d = nearest(cands, pool)
    if revisit:
        assert np.median(d) < 0.3
    else:
        assert np.median(d) > 0.4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        video_like(10, 8, 0, scene_frames=(5, 2))
    with pytest.raises(ValueError):
        pool_and_candidates(10, 10, 8, 0, revisit=1.5)
    with pytest.raises(ValueError):
        uniform_sphere(-1, 8, 0)
    with pytest.raises(ValueError, match="shape"):
        video_like(10, 8, 0, shape="bumpy")


def test_rough_parameters_are_derived_from_the_committed_real_measurement() -> None:
    for name, quantiles in rough_shape.MEASURED.items():
        assert REAL_STATS[name] == quantiles, name
    assert rough_shape.fit_rough(REAL_STATS) == ROUGH


def rough_clips(shape: str, seed: int) -> tuple[F32, list[int]]:
    """40 scenes cut to the measured clips' length, so per-scene statistics compare."""
    frames = REAL["frames"] // REAL["clips"]
    return video_like(40 * frames, 1280, seed, shape=shape, scene_frames=(frames, frames)), [frames] * 40


@pytest.mark.parametrize("shape", ["rough", "hard"])
def test_rough_statistics_fall_inside_the_measured_real_ranges(shape: str) -> None:
    rows, lengths = rough_clips(shape, 11)
    ours = statistics(rows, lengths)
    for name in ("consecutive", "scene_consecutive", "off_line", "top_share", "to_scene_mean", "cross_scene"):
        lo, median, hi = REAL_STATS[name]
        assert lo <= ours[name][1] <= hi, (name, ours[name], REAL_STATS[name])
        # The fitted statistics land near the real median, not just inside the range.
        if name != "top_share":
            assert ours[name][1] == pytest.approx(median, rel=0.1), (name, ours[name], REAL_STATS[name])


def test_the_smooth_shape_is_smoother_than_any_real_clip() -> None:
    rows, lengths = video_like(40 * 64, 1280, 11, scene_frames=(64, 64)), [64] * 40
    ours = statistics(rows, lengths)
    assert ours["consecutive"][2] < REAL_STATS["consecutive"][0]
    assert ours["off_line"][2] < REAL_STATS["off_line"][0]


def scene_means_and_radius(shape: str) -> tuple[float, float]:
    """Median distance of a scene mean to the nearest other one, and median frame-to-mean distance."""
    rows = video_like(6_000, 1280, 4, shape=shape)
    lengths = scene_lengths(6_000, 4, shape)
    starts = np.cumsum([0, *lengths])
    means = np.stack([rows[a:b].astype(np.float64).mean(axis=0) for a, b in itertools.pairwise(starts)])
    gaps = pairwise(means)
    np.fill_diagonal(gaps, np.inf)
    to_mean = rows - np.repeat(means, lengths, axis=0)
    radius = float(np.median(np.linalg.norm(to_mean, axis=1)))
    return float(np.median(gaps.min(axis=1))), radius


def test_hard_scenes_overlap_their_neighbours_while_rough_scenes_stand_apart() -> None:
    hard_gap, hard_radius = scene_means_and_radius("hard")
    rough_gap, rough_radius = scene_means_and_radius("rough")
    assert hard_gap < 2 * hard_radius  # two scenes' frame clouds overlap
    assert rough_gap > 2.5 * rough_radius


def test_rough_revisits_land_near_their_pool_scene() -> None:
    pool, cands = pool_and_candidates(2_000, 500, 1280, 5, shape="rough", revisit=1.0)
    _, fresh = pool_and_candidates(2_000, 500, 1280, 5, shape="rough", revisit=0.0)
    assert np.median(nearest(cands, pool)) < 0.6 < np.median(nearest(fresh, pool))
