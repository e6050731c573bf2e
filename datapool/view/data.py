"""What the embedding view draws: the rows, their tags and vectors, and where they come from.

Rows are pooled frames first (in pool order, so a tag's first row gives run order), then
the embedding cache's frames the pool does not hold. Columns are arrays, not objects per
point, so a million points stay a few arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


class UnknownDataset(LookupError):
    """No dataset of that name; the view answers 404 naming it."""


@dataclass
class ViewData:
    version: int
    # Run tags in run order; row i is pooled in tags[tag_of[i]], or not pooled when -1.
    tags: list[str]
    tag_of: npt.NDArray[np.int32]
    vectors: npt.NDArray[np.float32]
    names: list[str]
    keys: list[str]
    sources: list[str]
    frame_index: npt.NDArray[np.int64]
    # Why there is nothing to draw (no LIGHTLY datasource); empty otherwise.
    note: str = ""

    @property
    def pooled(self) -> int:
        return int(np.count_nonzero(self.tag_of >= 0))

    def tag_counts(self) -> list[int]:
        counts = np.bincount(self.tag_of[self.tag_of >= 0], minlength=len(self.tags))
        return [int(c) for c in counts]

    def frame_ids(self) -> list[str]:
        """A name per row that stays across pool versions (pooled or not): video and frame index."""
        return [f"{s}\x00{i}" for s, i in zip(self.sources, self.frame_index.tolist(), strict=True)]

    def nearest_pool_distance(self, row: int) -> float | None:
        """L2 distance from row `row` to the nearest other pooled frame; None if there is none."""
        pool = self.vectors[: self.pooled]
        if len(pool) - (1 if row < len(pool) else 0) <= 0:
            return None
        d = np.linalg.norm(pool - self.vectors[row], axis=1)
        if row < len(pool):
            d[row] = np.inf
        return float(d.min())


def empty(note: str = "") -> ViewData:
    return ViewData(
        0, [], np.zeros(0, np.int32), np.zeros((0, 0), np.float32), [], [], [], np.zeros(0, np.int64), note
    )


class ViewSource(Protocol):
    def load(self, dataset: str) -> ViewData:
        """Raises UnknownDataset."""
        ...

    def frame(self, dataset: str, key: str) -> tuple[bytes, str]:
        """A rendered frame's bytes and content type."""
        ...

    def datasets(self) -> list[str]: ...
