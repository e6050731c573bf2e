"""datapool.view.projection_cache: one projection per pool version, each placed with the last fit."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest
from clustered_rows import clusters as _clusters

from datapool.view import projection, projection_cache
from datapool.view.projection import Array, Fit
from datapool.view.projection_cache import ProjectionCache


def test_a_projection_is_computed_once_per_pool_version_and_row_count() -> None:
    cache = ProjectionCache()
    v = _clusters(50)
    first = cache.get("ds", 3, "pca", v)
    assert cache.get("ds", 3, "pca", v) is first and cache.computed == 1
    cache.get("ds", 4, "pca", v)  # a new pool version
    cache.get("ds", 4, "pca", _clusters(60))  # the embedding cache grew
    cache.get("other", 4, "pca", v)
    assert cache.computed == 4


def test_a_new_pool_version_is_placed_with_the_last_fit_until_it_outgrows_it() -> None:
    cache = ProjectionCache()
    v1 = _clusters(200)
    xy1 = cache.get("ds", 1, "pca", v1)
    v2 = np.concatenate([v1, _clusters(100, seed=1)])
    xy2 = cache.get("ds", 2, "pca", v2)
    assert xy1 is not None and xy2 is not None
    assert np.abs(xy2[:200] - xy1).max() < 1e-6
    assert (cache.computed, cache.fitted) == (2, 1)
    cache.get("ds", 3, "pca", np.concatenate([v2, _clusters(600, seed=2)]))  # 900 rows > 4 x 200
    assert (cache.computed, cache.fitted) == (3, 2)
    cache.get("ds", 3, "tsne", _clusters(2))  # t-SNE's own fit; PCA's is untouched
    assert cache.fitted == 3


def test_a_slow_projection_answers_none_while_it_computes_and_once_done_its_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def held_fit(vectors: Array, method: str, ids: Sequence[str] | None) -> tuple[Array, Fit | None]:
        if method == "tsne":
            release.wait(30)  # holds the worker, as a fit of minutes would
        return projection.fit(vectors, method, ids)

    monkeypatch.setattr(projection_cache, "fit", held_fit)
    cache = ProjectionCache()
    v = _clusters(2)  # t-SNE places two rows without fitting: the test costs no fit
    assert cache.get("ds", 1, "tsne", v, wait_s=0.05) is None
    assert cache.computing_for("ds", 1, "tsne", 2) > 0
    assert cache.get("ds", 1, "pca", _clusters(50), wait_s=30) is not None  # not queued behind it
    release.set()
    xy = cache.get("ds", 1, "tsne", v, wait_s=30)
    assert xy is not None and xy.shape == (2, 2)
    assert cache.computing_for("ds", 1, "tsne", 2) == 0


def test_umap_is_cached_and_places_a_new_versions_rows_without_moving_the_old_ones() -> None:
    # The only UMAP test: umap-learn's numba kernels compile on first use (~40 s of CPU here).
    cache = ProjectionCache()
    ids = [f"video.mp4\x00{i}" for i in range(260)]
    v1, more = _clusters(200), _clusters(60, seed=1)  # `more`: new frames of the same scenes
    xy1 = cache.get("ds", 1, "umap", v1, lambda: ids[:200])
    assert xy1 is not None and xy1.shape == (200, 2)
    assert cache.get("ds", 1, "umap", v1, lambda: ids[:200]) is xy1
    xy2 = cache.get("ds", 2, "umap", np.concatenate([v1, more]), lambda: ids)
    assert xy2 is not None
    assert np.abs(xy2[:200] - xy1).max() < 1e-6
    assert (cache.computed, cache.fitted) == (2, 1)  # placed with the kept model, not refitted
    # Each new frame lands beside old frames of its own scene: its nearest old point in 2-D is
    # one whose vector is close to its own.
    nearest = np.linalg.norm(xy2[200:, None] - xy1[None], axis=2).argmin(axis=1)
    close = np.linalg.norm(more - v1[nearest], axis=1) < 0.5
    assert close.mean() >= 0.9
