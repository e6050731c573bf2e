"""2-D projections of the view's vectors (scikit-learn), cached per pool version.

PCA by default: linear, deterministic and fast at a million rows (randomized SVD). t-SNE
keeps neighbourhoods better but costs minutes beyond tens of thousands of rows, so it runs
on the first 50 principal components, as its authors recommend.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

METHODS = ("pca", "tsne")
# Projections kept at once (per dataset, pool version, method and row count).
_CACHED = 8
# PCA's axes from this many rows are as good as from a million; fitting on more only costs time.
_FIT_ROWS = 100_000


def project(vectors: npt.NDArray[np.float32], method: str) -> npt.NDArray[np.float32]:
    """n x 2 coordinates scaled into [-0.95, 0.95] (the WebGL plot's device coordinates)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    # Imported here: scikit-learn takes seconds to import, and the scheduler imports this
    # module at start (for run reports) long before a run needs a projection. The view starts
    # this import in the background when it launches (warm_up), so a first page rarely waits.
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn needs it

    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 3 or vectors.shape[1] < 2:
        xy = np.zeros((n, 2))
        xy[:, 0] = np.linspace(-1, 1, n) if n > 1 else 0
    elif method == "pca":
        # One BLAS thread: on a busy 2-core machine OpenBLAS's spinning threads made this
        # 100k x 64 fit take 1.5-5 s instead of 0.1 s (a million rows: ~1 s with one thread).
        # Fitted on at most _FIT_ROWS rows (a fixed sample: the same pool gives the same picture),
        # then every row projected with one float32 product: a million rows in ~0.3 s, not ~6.
        fit_on = vectors
        if n > _FIT_ROWS:
            fit_on = vectors[np.sort(np.random.default_rng(0).choice(n, _FIT_ROWS, replace=False))]
        with threadpool_limits(1, user_api="blas"):
            pca = PCA(n_components=2, svd_solver="auto", random_state=0).fit(fit_on)
            axes = pca.components_.T.astype(np.float32)
            xy = vectors @ axes - pca.mean_.astype(np.float32) @ axes
    else:
        from sklearn.manifold import TSNE

        with threadpool_limits(1, user_api="blas"):
            reduced = PCA(n_components=min(50, n, vectors.shape[1]), random_state=0).fit_transform(vectors)
        perplexity = float(min(30, max(2, (n - 1) // 3)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=500, random_state=0)
        xy = tsne.fit_transform(reduced)
    return _scaled(np.asarray(xy, np.float64)).astype(np.float32)


def warm_up() -> None:
    """Import scikit-learn's PCA now (seconds), so the first projection does not wait for it."""
    from sklearn.decomposition import PCA  # noqa: F401


def _scaled(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    centre = (xy.max(axis=0) + xy.min(axis=0)) / 2
    half = float((xy.max(axis=0) - xy.min(axis=0)).max()) / 2
    out: npt.NDArray[np.float64] = (xy - centre) / half * 0.95 if half > 0 else xy - centre
    return out


class ProjectionCache:
    """Projections by (dataset, pool version, method, rows): the embedding cache can grow
    while the pool version stays, so the row count is part of the key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, int, str, int], npt.NDArray[np.float32]] = OrderedDict()
        self.computed = 0

    def get(
        self, dataset: str, version: int, method: str, vectors: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        key = (dataset, version, method, len(vectors))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        xy = project(vectors, method)
        with self._lock:
            self.computed += 1
            self._items[key] = xy
            while len(self._items) > _CACHED:
                self._items.popitem(last=False)
        return xy
