"""Several arrays of rows read as one matrix, without joining them into a copy."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from datapool.pool.state import Vectors


class RowBlocks:
    """The rows of `blocks`, one block after another, as a (rows, dim) float32 matrix.

    A run's candidate set is its files' blocks in (file, frame_index) order; joining them
    would hold every vector a second time, so rows are gathered only when asked for.
    """

    def __init__(self, blocks: Sequence[Vectors], dim: int) -> None:
        self._blocks = [b for b in blocks if len(b)]
        for b in self._blocks:
            if b.ndim != 2 or b.shape[1] != dim:
                raise ValueError(f"a block of shape {b.shape} among rows of width {dim}")
        # starts[i]: the first row of block i; the last entry is the row count.
        self._starts = np.cumsum([0, *(len(b) for b in self._blocks)], dtype=np.int64)
        self.shape = (int(self._starts[-1]), dim)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> Vectors:
        """All rows joined: a copy of the whole run, for checks, never on the service's path."""
        joined = self._gather(np.arange(len(self), dtype=np.int64))
        return joined if dtype is None else joined.astype(dtype)

    def blocks(self) -> Iterator[tuple[int, Vectors]]:
        """Each block with its first row."""
        return zip(self._starts[:-1].tolist(), self._blocks, strict=True)

    def __getitem__(self, rows: int | Sequence[int] | npt.NDArray[np.int64]) -> Vectors:
        """Row `rows` (1-d), or the rows listed in `rows` as a new (len(rows), dim) array."""
        if isinstance(rows, int | np.integer):
            row: Vectors = self._gather(np.array([rows], dtype=np.int64))[0]
            return row
        return self._gather(np.asarray(rows, dtype=np.int64).reshape(-1))

    def _gather(self, rows: npt.NDArray[np.int64]) -> Vectors:
        n = len(self)
        rows = np.where(rows < 0, rows + n, rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"row out of range for {n} rows")
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        block_of = np.searchsorted(self._starts, rows, side="right") - 1
        for b in np.unique(block_of).tolist():
            mask = block_of == b
            out[mask] = self._blocks[b][rows[mask] - self._starts[b]]
        return out
