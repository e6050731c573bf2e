"""datapool.view.projection: 2-D coordinates for the WebGL plot, fitted once, kept as the pool grows."""

from __future__ import annotations

import numpy as np
import pytest
from clustered_rows import clusters as _clusters

from datapool.view.projection import REFIT_GROWTH, extend, fit, project


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
    with pytest.raises(ValueError, match=r"method must be one of pca, umap, tsne, got 'isomap'"):
        project(_clusters(10), "isomap")


def test_a_pca_fit_places_new_rows_without_moving_the_old_ones() -> None:
    old = _clusters(300)
    before, kept = fit(old, "pca", None)
    assert kept is not None
    grown = np.concatenate([old, _clusters(100, seed=1)])
    after, _ = extend(kept, grown, None)
    assert np.abs(after[:300] - before).max() < 1e-6
    # The kept axes are the old fit's, not a refit on the grown rows.
    assert not np.allclose(fit(grown, "pca", None)[0][:300], before, atol=1e-3)


def test_new_rows_beyond_the_plot_widen_it_moving_every_point_by_one_zoom() -> None:
    old = _clusters(300)
    before, kept = fit(old, "pca", None)
    assert kept is not None
    far = 5 * _clusters(20, seed=2)  # well outside the fitted cloud
    after, widened = extend(kept, np.concatenate([old, far]), None)
    assert np.abs(after).max() == pytest.approx(0.95, abs=1e-4)
    # Old points keep their arrangement: after = a * before + b with one a and b.
    a = np.ptp(after[:300], axis=0) / np.ptp(before, axis=0)
    assert a[0] == pytest.approx(a[1], rel=1e-4) and a[0] < 1
    b = after[:300] - a[0] * before
    assert np.allclose(b, b[0], atol=1e-5)
    assert widened.half > kept.half


def test_a_fit_is_redone_once_the_rows_outgrow_it() -> None:
    _, kept = fit(_clusters(100), "pca", None)
    assert kept is not None
    assert kept.covers(_clusters(int(100 * REFIT_GROWTH)))
    assert not kept.covers(_clusters(int(100 * REFIT_GROWTH) + 1))
    assert not kept.covers(_clusters(100, dim=16))
