"""What the colours mean: one per run in run order, the whole pool, and the faint background."""

from __future__ import annotations

from typing import Any

from datapool.view.data import ViewData

# One colour per run in run order: the first run grey, the second green (the picture users
# know from Lightly), then matplotlib's tab10 order.
PALETTE = ("#7f7f7f", "#2ca02c", "#1f77b4", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
WHOLE = {"name": "initial-tag", "label": "initial-tag (whole pool)", "color": "#222222"}
# Opaque light grey rather than transparency: the plot draws large sets without alpha blending.
BACKGROUND = {"name": "embedded-not-pooled", "label": "embedded, not pooled", "color": "#d4d4d4"}
POOL_POINT_PX, BACKGROUND_POINT_PX = 7, 4


def legend(view: ViewData) -> dict[str, Any]:
    """The legend's entries with their counts, as the page's script reads them."""
    counts = view.tag_counts()
    tags = [
        {"name": t, "color": PALETTE[i % len(PALETTE)], "alpha": 1.0, "size": POOL_POINT_PX, "count": n}
        for i, (t, n) in enumerate(zip(view.tags, counts, strict=True))
    ]
    faint = len(view.tag_of) - view.pooled
    background = {**BACKGROUND, "alpha": 1.0, "size": BACKGROUND_POINT_PX, "count": faint}
    return {"tags": tags, "whole": {**WHOLE, "count": view.pooled}, "background": background}
