"""2-D projections of the view's vectors, fitted once and kept as the pool grows.

PCA by default: linear, deterministic and fast at a million rows. UMAP (umap-learn) keeps
neighbourhoods better and, like PCA, places new rows with the fit it has; t-SNE (scikit-learn)
keeps neighbourhoods too but cannot place new rows and costs minutes beyond tens of thousands,
so it runs on the first 50 principal components, as its authors recommend.

Users compare runs: each run's frames fill gaps the earlier runs left, so points drawn for
pool version N must stay where they were in N+1. A `Fit` keeps what places a row (PCA's axes,
UMAP's model and the coordinates it gave each frame) and the 2-D frame (centre, scale), and
`extend` places only the rows it has not seen. t-SNE is refitted per version.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

METHODS = ("pca", "umap", "tsne")
# Methods whose fit places new rows without moving the old ones.
INCREMENTAL = ("pca", "umap")
# PCA's axes from this many rows are as good as from a million; fitting on more only costs time.
_FIT_ROWS = 100_000
# A fit is redone (and the picture changes) once the rows outgrow this many times those it
# was fitted on: the axes or the UMAP graph of a quarter of the data no longer describe it.
REFIT_GROWTH = 4.0
# The plot's device coordinates: a fit fills [-_EDGE, _EDGE]; new rows may reach [-1, 1]
# before the frame is widened (every point then moves by the same zoom).
_EDGE = 0.95

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Fit:
    method: str
    dim: int
    fitted_rows: int
    centre: npt.NDArray[np.float64]
    half: float
    # PCA: raw = vectors @ axes - offset.
    axes: Array | None = None
    offset: Array | None = None
    # UMAP: the model, and the raw coordinates given so far to each frame id.
    model: Any = None
    placed: dict[str, int] = field(default_factory=dict)
    raw: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))

    def covers(self, vectors: Array) -> bool:
        return vectors.shape[1] == self.dim and len(vectors) <= REFIT_GROWTH * self.fitted_rows


def check(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def project(vectors: Array, method: str) -> Array:
    """n x 2 coordinates scaled into [-0.95, 0.95] (the WebGL plot's device coordinates)."""
    return fit(vectors, method, None)[0]


def fit(vectors: Array, method: str, ids: Sequence[str] | None) -> tuple[Array, Fit | None]:
    """A fresh fit of every row; the Fit (None for t-SNE and tiny inputs) places later rows.
    `ids` name the rows (UMAP keeps each one's coordinates); None: no later rows."""
    check(method)
    n = len(vectors)
    if n < 3 or vectors.shape[1] < 2:
        xy = np.zeros((n, 2))
        xy[:, 0] = np.linspace(-1, 1, n) if n > 1 else 0
        return _scaled(xy, *_frame(xy)), None
    if method == "pca":
        axes, offset = _pca_axes(vectors)
        raw = np.asarray(vectors @ axes - offset, np.float64)
        done = Fit("pca", vectors.shape[1], n, *_frame(raw), axes=axes, offset=offset)
        return _scaled(raw, done.centre, done.half), done
    if method == "umap":
        model, raw = _umap(vectors)
        placed = {i: k for k, i in enumerate(ids)} if ids is not None else {}
        done = Fit("umap", vectors.shape[1], n, *_frame(raw), model=model, placed=placed, raw=raw)
        return _scaled(raw, done.centre, done.half), done
    raw = _tsne(vectors)
    return _scaled(raw, *_frame(raw)), None


def extend(previous: Fit, vectors: Array, ids: Sequence[str] | None) -> tuple[Array, Fit]:
    """Every row placed with `previous`: rows it has placed keep their coordinates, new rows are
    placed by its axes (PCA) or model (UMAP). The 2-D frame is kept unless a new row would fall
    outside the plot; then it is widened, moving every point by the same zoom."""
    if previous.method == "pca":
        assert previous.axes is not None and previous.offset is not None
        raw = np.asarray(vectors @ previous.axes - previous.offset, np.float64)
        done = previous
    else:
        assert ids is not None, "UMAP keeps coordinates by frame id"
        known = np.fromiter((previous.placed.get(i, -1) for i in ids), np.int64, len(ids))
        new = np.flatnonzero(known < 0)
        raw = np.empty((len(vectors), 2))
        raw[known >= 0] = previous.raw[known[known >= 0]]
        if len(new):
            raw[new] = _threads_limited(previous.model.transform, vectors[new])
        placed = dict(previous.placed)
        placed.update((ids[r], len(previous.raw) + k) for k, r in enumerate(new.tolist()))
        done = replace(previous, placed=placed, raw=np.concatenate([previous.raw, raw[new]]))
    xy = _scaled(raw, done.centre, done.half)
    if len(xy) and float(np.abs(xy).max()) > 1.0:
        centre, half = _frame(raw)
        done = replace(done, centre=centre, half=half)
        xy = _scaled(raw, done.centre, done.half)
    return xy, done


def warm_up() -> None:
    """Import scikit-learn's PCA now (seconds), so the first projection does not wait for it."""
    from sklearn.decomposition import PCA  # noqa: F401


def _threads_limited(f: Any, *args: Any) -> Any:
    # One BLAS thread: on a busy 2-core machine OpenBLAS's spinning threads made a 100k x 64
    # PCA fit take 1.5-5 s instead of 0.1 s.
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn needs it

    with threadpool_limits(1, user_api="blas"):
        return f(*args)


def _pca_axes(vectors: Array) -> tuple[Array, Array]:
    # Imported here: scikit-learn takes seconds to import, and the scheduler imports this
    # module at start (for run reports) long before a run needs a projection.
    from sklearn.decomposition import PCA

    # Fitted on at most _FIT_ROWS rows (a fixed sample: the same pool gives the same picture),
    # then every row projected with one float32 product: a million rows in ~0.3 s, not ~6.
    fit_on = vectors
    if len(vectors) > _FIT_ROWS:
        pick = np.random.default_rng(0).choice(len(vectors), _FIT_ROWS, replace=False)
        fit_on = vectors[np.sort(pick)]
    pca = _threads_limited(PCA(n_components=2, svd_solver="auto", random_state=0).fit, fit_on)
    axes = pca.components_.T.astype(np.float32)
    return axes, pca.mean_.astype(np.float32) @ axes


def _umap(vectors: Array) -> tuple[Any, npt.NDArray[np.float64]]:
    # umap-learn imports numba, which compiles its kernels on first use (cached on disk after).
    with warnings.catch_warnings():
        # It warns that TensorFlow (for ParametricUMAP, unused here) is not installed.
        warnings.simplefilter("ignore", ImportWarning)
        import umap  # type: ignore[import-untyped]  # umap-learn ships no type information

    # A fixed seed: the same pool gives the same picture. It makes umap-learn run on one thread
    # (said here, or it warns), which a 2-core machine barely misses.
    model = umap.UMAP(
        n_components=2, n_neighbors=15, min_dist=0.1, random_state=0, transform_seed=0, n_jobs=1
    )
    raw = _threads_limited(model.fit_transform, vectors)
    return model, np.asarray(raw, np.float64)


def _tsne(vectors: Array) -> npt.NDArray[np.float64]:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(vectors)
    reduced = _threads_limited(
        PCA(n_components=min(50, n, vectors.shape[1]), random_state=0).fit_transform, vectors
    )
    perplexity = float(min(30, max(2, (n - 1) // 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=500, random_state=0)
    return np.asarray(tsne.fit_transform(reduced), np.float64)


def _frame(raw: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], float]:
    if len(raw) == 0:
        return np.zeros(2), 0.0
    centre = (raw.max(axis=0) + raw.min(axis=0)) / 2
    return centre, float((raw.max(axis=0) - raw.min(axis=0)).max()) / 2


def _scaled(raw: npt.NDArray[np.float64], centre: npt.NDArray[np.float64], half: float) -> Array:
    out = (raw - centre) / half * _EDGE if half > 0 else raw - centre
    return np.asarray(out, np.float32)
