"""The run report's figures (matplotlib, Agg, no pyplot: safe in the scheduler's threads),
each returned as PNG bytes for a self-contained page.

Three figures, not one per plot: each savefig costs ~100 ms, and every run renders them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

# Pool distances are measured on a sample this large at most (each is one pass over the pool).
NN_SAMPLE = 4000
_GREY, _GREEN, _BLUE = "#9a9a9a", "#2ca02c", "#1f77b4"


@dataclass(frozen=True)
class PoolVectors:
    """The pool after the run: vectors, and which rows this run added."""

    vectors: npt.NDArray[np.float32]
    this_run: npt.NDArray[np.bool_]


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    # Fixed margins, not tight_layout or bbox_inches="tight": those measure every label
    # again and cost more than the drawing itself.
    fig.savefig(out, format="png", dpi=72)
    return out.getvalue()


def nearest_distances(pool: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Each (sampled) frame's L2 distance to its nearest other frame in `pool`."""
    if len(pool) < 2:
        return np.zeros(0)
    rows = rng.choice(len(pool), NN_SAMPLE, replace=False) if len(pool) > NN_SAMPLE else np.arange(len(pool))
    sq = (pool.astype(np.float64) ** 2).sum(1)
    out = np.empty(len(rows))
    for start in range(0, len(rows), 256):
        block = rows[start : start + 256]
        d2 = sq[block, None] + sq[None, :] - 2 * pool[block].astype(np.float64) @ pool.T.astype(np.float64)
        d2[np.arange(len(block)), block] = np.inf
        out[start : start + len(block)] = np.sqrt(np.maximum(d2.min(1), 0))
    return out


def summary_figure(report: dict[str, Any], pool: PoolVectors) -> bytes:
    """Seconds per stage, pick distances, and nearest-neighbour distances before and after.
    (File and frame counts are tables on the page: a bar chart of three numbers adds nothing.)"""
    fig = Figure(figsize=(15, 3.6))
    left, middle, right = fig.subplots(1, 3)
    seconds = {k: v for k, v in report["seconds"].items() if k != "total"}
    left.barh(list(seconds)[::-1], list(seconds.values())[::-1], color=_BLUE)
    left.set_title(f"seconds per stage (total {report['seconds'].get('total', 0):.2f} s)")
    picks = np.array([s["distance"] for s in report["selected"]], np.float64)
    picks = picks[np.isfinite(picks)]
    middle.hist(picks, bins=30, color=_GREEN)
    middle.set_title(f"pick distances ({len(picks)} picks with a finite distance)")
    rng = np.random.default_rng(0)
    before = nearest_distances(pool.vectors[~pool.this_run], rng)
    after = nearest_distances(pool.vectors, rng)
    top = max([0.0, *before, *after]) or 1.0
    bins = np.linspace(0, top, 31)
    held = int((~pool.this_run).sum())
    right.hist(before, bins=bins, alpha=0.6, color=_GREY, label=f"before ({held} frames)")
    right.hist(after, bins=bins, alpha=0.6, color=_GREEN, label=f"after ({len(pool.vectors)} frames)")
    right.legend()
    right.set_title("nearest-neighbour distance in the pool")
    fig.subplots_adjust(left=0.1, right=0.99, top=0.9, bottom=0.1, wspace=0.3)
    return _png(fig)


def view_figure(xy: npt.NDArray[np.float32], this_run: npt.NDArray[np.bool_]) -> bytes:
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    ax.scatter(xy[~this_run, 0], xy[~this_run, 1], s=8, c=_GREY, label="pool before this run")
    ax.scatter(xy[this_run, 0], xy[this_run, 1], s=16, c=_GREEN, label="this run's picks")
    ax.legend(loc="best")
    ax.set_title("the pool in 2-D (PCA)")
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def density_figure(report: dict[str, Any], limit: int = 30) -> bytes:
    """Per video: frames embedded (bar) against frames picked (bar, and ticks where they are)."""
    picks: dict[str, list[int]] = {}
    for s in report["selected"]:
        picks.setdefault(s["source"], []).append(int(s["frame_index"]))
    files = sorted(report["files"]["processed"], key=lambda f: (-len(picks.get(f["path"], [])), f["path"]))
    files = files[:limit]
    fig = Figure(figsize=(11, 1.2 + 0.35 * max(1, len(files))))
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    names = [f["path"][-40:] for f in files][::-1]
    left.barh(names, [f["frames_embedded"] for f in files][::-1], color=_GREY, label="embedded")
    left.barh(names, [len(picks.get(f["path"], [])) for f in files][::-1], color=_GREEN, label="picked")
    left.legend(loc="lower right")
    left.set_title("frames per video")
    for row, f in enumerate(files[::-1]):
        at = np.array(picks.get(f["path"], []), np.float64) / max(1, f["frames"] - 1)
        right.scatter(at, np.full(len(at), row), marker="|", s=120, c=_GREEN)
    right.set_yticks([])
    right.set_ylim(-0.5, max(1, len(files)) - 0.5)
    right.set_xlim(-0.02, 1.02)
    right.set_xlabel("position in the video (0 = first frame, 1 = last)")
    right.set_title("where the picks are")
    inches = fig.get_figheight()
    fig.subplots_adjust(left=0.2, right=0.98, top=1 - 0.5 / inches, bottom=0.6 / inches)
    return _png(fig)
