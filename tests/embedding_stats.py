"""Statistics that describe the shape of video-frame embeddings, for real and synthetic rows alike.

Rows come in scenes (``lengths``: consecutive runs of rows, one clip or scene each, frames in
order). The same code measures real EfficientNet-Lite0 features (bench/real_features.py) and
the generators in `synthetic_embeddings`, so the two can be compared number for number:

- ``consecutive``: distance between consecutive frames of a scene;
- ``scene_consecutive``: the median of ``consecutive`` per scene (how much scenes differ in
  roughness: a fast pan against a tripod shot);
- ``off_line``: distance of a frame to the line through its two neighbours (how rough the
  trajectory is: 0 on a straight, evenly sampled path);
- ``top_share``: share of the variance the top principal direction explains in windows of
  ``window`` consecutive frames (non-overlapping, inside a scene);
- ``to_scene_mean``: distance of a frame to the mean of its scene (the scene's radius);
- ``cross_scene``: distance between random frames of two different scenes;
- ``scene_means``: distance between the means of two different scenes.

Each is summarised by its 5%, 50% and 95% quantiles.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

STATISTICS = (
    "consecutive",
    "scene_consecutive",
    "off_line",
    "top_share",
    "to_scene_mean",
    "cross_scene",
    "scene_means",
)
QUANTILES = (5, 50, 95)
WINDOW = 16


def _scenes(rows: F32, lengths: Sequence[int]) -> list[F64]:
    if sum(lengths) != rows.shape[0] or any(n < 1 for n in lengths):
        raise ValueError(f"lengths must be positive and sum to {rows.shape[0]} rows, got sum {sum(lengths)}")
    starts = np.cumsum([0, *lengths])
    return [rows[a:b].astype(np.float64) for a, b in itertools.pairwise(starts)]


def _off_line(scene: F64) -> F64:
    prev, mid, nxt = scene[:-2], scene[1:-1], scene[2:]
    direction = nxt - prev
    length2 = np.maximum(np.einsum("ij,ij->i", direction, direction), 1e-300)
    rel = mid - prev
    along = np.einsum("ij,ij->i", rel, direction) / length2
    perp = rel - along[:, None] * direction
    out: F64 = np.sqrt(np.einsum("ij,ij->i", perp, perp))
    return out


def _top_shares(scene: F64, window: int) -> list[float]:
    shares = []
    for a in range(0, scene.shape[0] - window + 1, window):
        block = scene[a : a + window]
        block = block - block.mean(axis=0)
        # Eigenvalues of the window x window Gram matrix: the squared singular values, without
        # an SVD of the window x dim block (LAPACK's threads crawl on a busy machine).
        eig = np.linalg.eigvalsh(block @ block.T)
        total = float(eig.sum())
        if total > 0:
            shares.append(float(eig[-1]) / total)
    return shares


def pairwise(x: F64) -> F64:
    """Distances between all rows of ``x`` (Gram form: no rows x rows x dim temporary)."""
    sq = np.einsum("ij,ij->i", x, x)
    out: F64 = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    return out


def raw_statistics(
    rows: F32, lengths: Sequence[int], seed: int = 0, pairs: int = 4000, window: int = WINDOW
) -> dict[str, F64]:
    """Every statistic's sample values (see the module docstring); ``seed`` draws the random pairs."""
    scenes = _scenes(rows, lengths)
    rng = np.random.default_rng(seed)
    consecutive = [np.linalg.norm(np.diff(s, axis=0), axis=1) for s in scenes if len(s) > 1]
    off_line = [_off_line(s) for s in scenes if len(s) > 2]
    shares = [v for s in scenes for v in _top_shares(s, window)]
    means = np.stack([s.mean(axis=0) for s in scenes])
    to_mean = [np.linalg.norm(s - m, axis=1) for s, m in zip(scenes, means, strict=True)]
    out: dict[str, F64] = {
        "consecutive": np.concatenate(consecutive) if consecutive else np.empty(0),
        "scene_consecutive": np.asarray([np.median(c) for c in consecutive]),
        "off_line": np.concatenate(off_line) if off_line else np.empty(0),
        "top_share": np.asarray(shares),
        "to_scene_mean": np.concatenate(to_mean),
    }
    n_scenes = len(scenes)
    if n_scenes > 1:
        starts = np.cumsum([0, *lengths])
        a = rng.integers(0, n_scenes, pairs)
        b = (a + rng.integers(1, n_scenes, pairs)) % n_scenes  # a different scene
        ra = starts[a] + (rng.random(pairs) * np.asarray(lengths)[a]).astype(np.int64)
        rb = starts[b] + (rng.random(pairs) * np.asarray(lengths)[b]).astype(np.int64)
        x = rows.astype(np.float64)
        out["cross_scene"] = np.linalg.norm(x[ra] - x[rb], axis=1)
        out["scene_means"] = pairwise(means)[np.triu_indices(n_scenes, 1)]
    else:
        out["cross_scene"] = out["scene_means"] = np.empty(0)
    return out


def summarise(values: dict[str, F64]) -> dict[str, list[float]]:
    """``{statistic: [p5, p50, p95]}``, rounded to 4 decimals (empty where there is no sample)."""
    return {
        name: [round(float(q), 4) for q in np.percentile(v, QUANTILES)] if len(v) else []
        for name, v in values.items()
    }


def statistics(rows: F32, lengths: Sequence[int], seed: int = 0) -> dict[str, list[float]]:
    """`summarise` of `raw_statistics`."""
    return summarise(raw_statistics(rows, lengths, seed))


def table(columns: dict[str, dict[str, list[float]]]) -> str:
    """A plain-text table: one line per statistic, ``p5 / p50 / p95`` per column."""
    names = list(columns)
    lines = [f"{'statistic':<15}" + "".join(f"{n:>26}" for n in names)]
    for stat in STATISTICS:
        cells = []
        for n in names:
            q = columns[n].get(stat, [])
            cells.append(" / ".join(f"{v:.3f}" for v in q) if q else "-")
        lines.append(f"{stat:<15}" + "".join(f"{c:>26}" for c in cells))
    return "\n".join(lines)
