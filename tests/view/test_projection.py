"""datapool.view.projection: 2-D coordinates for the WebGL plot, computed once per pool version."""

from __future__ import annotations

import numpy as np
import pytest

from datapool.view.projection import ProjectionCache, project


def _clusters(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim))
    v = centres[rng.integers(0, 4, n)] + 0.05 * rng.normal(size=(n, dim))
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def test_coordinates_fill_the_plot_and_keep_clusters_apart() -> None:
    # PCA only: t-SNE's fit takes tens of seconds even on 100 rows of a busy 2-core machine.
    v = _clusters(120)
    xy = project(v, "pca")
    assert xy.shape == (120, 2) and xy.dtype == np.float32
    assert np.abs(xy).max() == pytest.approx(0.95, abs=1e-4)
    # Rows of one cluster land nearer each other than rows of different clusters, on average.
    same = np.linalg.norm(v[:, None] - v[None], axis=2) < 0.5
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    assert d[same].mean() < 0.5 * d[~same].mean()


def test_pca_is_the_same_every_time() -> None:
    v = _clusters(200)
    assert np.array_equal(project(v, "pca"), project(v, "pca"))


def test_one_or_two_frames_get_places_without_a_fit() -> None:
    assert project(_clusters(1), "pca").tolist() == [[0.0, 0.0]]
    assert project(_clusters(2), "tsne").shape == (2, 2)
    assert project(np.zeros((0, 8), np.float32), "pca").shape == (0, 2)


def test_an_unknown_method_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"pca, tsne, got 'umap'"):
        project(_clusters(10), "umap")


def test_a_projection_is_computed_once_per_pool_version_and_row_count() -> None:
    cache = ProjectionCache()
    v = _clusters(50)
    first = cache.get("ds", 3, "pca", v)
    assert cache.get("ds", 3, "pca", v) is first and cache.computed == 1
    cache.get("ds", 4, "pca", v)  # a new pool version
    cache.get("ds", 4, "pca", _clusters(60))  # the embedding cache grew
    cache.get("other", 4, "pca", v)
    assert cache.computed == 4
