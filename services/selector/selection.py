"""The one place that calls selector_rs: greedy picks and their distances.

Candidates are measured against the pool while the embedders still stream: each file's
open candidates go to selector_rs as one block when the file completes, so that Select's
last step is only the greedy loop. selector_rs reports each pick's distance to the pool
and earlier picks itself. It keeps references to the blocks, not copies: the vectors are
held once, where RunVectors put them (memory or the run's spill file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import selector_rs
from datapool.errors import InvalidArgument
from datapool.pool.state import PoolState, Vectors
from services.selector.candidates import CandidateSet, FileCandidates
from services.selector.model import FileRef, FrameIdentity, Pick
from services.selector.row_blocks import RowBlocks


@dataclass(frozen=True)
class _FileBlock:
    """A file's block in the selector: which of its candidate rows it holds."""

    block: int
    # Indices into the file's candidates (its rows in frame_index order), ascending.
    rows: npt.NDArray[np.int64]
    frame_indices: npt.NDArray[np.int64]


class StreamingSelection:
    """Greedy selection over files that complete one by one, against a fixed pool.

    Each complete file's candidates not already pooled are measured against the pool as
    they arrive; `select` then runs over the files in (file, frame_index) order, so the
    picks do not depend on the order the files completed in.
    """

    def __init__(self, pool: PoolState, keep: Callable[[Vectors], Vectors] | None = None) -> None:
        self._pooled: Set[FrameIdentity] = pool.identities
        # Stores the open rows of a partly pooled file (the file's own block holds them all).
        self._keep = keep if keep is not None else np.ascontiguousarray
        with _rejecting_bad_input("the pool"):
            self._selector = selector_rs.IncrementalSelector(_pool_vectors(pool))
        self._files: dict[FileRef, _FileBlock] = {}

    def add_file(self, candidates: FileCandidates) -> None:
        """Adds (or replaces) a complete file's candidates; pooled frames are left out."""
        file = candidates.file
        self._files.pop(file, None)
        pooled = self._pooled
        open_rows = np.array(
            [i for i, f in enumerate(candidates.identities) if f not in pooled], dtype=np.int64
        )
        if len(open_rows) == 0:
            return
        vectors = candidates.vectors
        if len(open_rows) < len(candidates):
            vectors = self._keep(vectors[open_rows])
        with _rejecting_bad_input(f"batch.vectors for {file.path!r}"):
            # Kept by reference: `vectors` is never written to again.
            block = self._selector.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._files[file] = _FileBlock(block, open_rows, candidates.frame_indices[open_rows])

    def drop_file(self, file: FileRef) -> None:
        self._files.pop(file, None)

    @property
    def open_count(self) -> int:
        """Candidates of the added files that are not pooled yet."""
        return sum(len(b.rows) for b in self._files.values())

    def select(
        self,
        candidates: CandidateSet,
        n_samples: int,
        min_distance: float,
        stop: Callable[[], bool] | None = None,
    ) -> list[Pick]:
        """Picks among the added files' open candidates.

        `candidates`: the collector's set, built after the last file was added or dropped.
        `stop`: polled about every 50 ms while selector_rs runs (without the GIL, so the
        service's other calls go on); once it returns True, `selector_rs.Cancelled` is
        raised.
        """
        if n_samples == 0 or not self._files:
            return []
        # Blocks in (file, frame_index) order, whatever order the files completed in.
        files = sorted(self._files)
        order = [self._files[f].block for f in files]
        rows = np.concatenate([_candidate_rows(candidates, f, self._files[f]) for f in files])
        return _run_select(self._selector, order, rows, candidates, n_samples, min_distance, stop)


def _candidate_rows(candidates: CandidateSet, file: FileRef, added: _FileBlock) -> npt.NDArray[np.int64]:
    """The CandidateSet rows of a file's block."""
    start = candidates.file_starts.get(file)
    last = FrameIdentity(file, int(added.frame_indices[-1]))
    if start is None or candidates.identities[start + int(added.rows[-1])] != last:
        raise AssertionError(f"the candidate set does not hold {file.path!r} as it was selected from")
    return start + added.rows


def select_picks(
    candidates: CandidateSet, pool: PoolState, n_samples: int, min_distance: float
) -> list[Pick]:
    """Greedy farthest-point picks among candidates not already pooled, from scratch
    (Commit redoes its picks this way against a pool that moved on)."""
    open_rows = candidates.open_rows(pool.identities)
    if n_samples == 0 or len(open_rows) == 0:
        return []
    with _rejecting_bad_input("the pool"):
        selector = selector_rs.IncrementalSelector(_pool_vectors(pool))
    with _rejecting_bad_input("the candidates"):
        order = _add_open_rows(selector, candidates.vectors, open_rows)
    return _run_select(selector, order, open_rows, candidates, n_samples, min_distance)


def _add_open_rows(
    selector: selector_rs.IncrementalSelector, vectors: RowBlocks, open_rows: npt.NDArray[np.int64]
) -> list[int]:
    """Adds the open rows block by block, in row order: a wholly open block by reference
    (no copy of the run's vectors), the open rows of another as a copy of just those."""
    order = []
    for start, block in vectors.blocks():
        lo, hi = np.searchsorted(open_rows, [start, start + len(block)])
        if lo == hi:
            continue
        local = open_rows[lo:hi] - start
        rows = block if len(local) == len(block) else np.ascontiguousarray(block[local])
        order.append(selector.add(np.ascontiguousarray(rows, dtype=np.float32)))
    return order


def _run_select(
    selector: selector_rs.IncrementalSelector,
    order: list[int],
    rows: npt.NDArray[np.int64],
    candidates: CandidateSet,
    n_samples: int,
    min_distance: float,
    stop: Callable[[], bool] | None = None,
) -> list[Pick]:
    """`rows`: the CandidateSet row of each row of the blocks concatenated in `order`."""
    with _rejecting_bad_input("its input"):
        chosen, distances = selector.select(n_samples, min_distance, order, stop=stop)
    picks = []
    for local, distance in zip(chosen.tolist(), distances.tolist(), strict=True):
        row = int(rows[local])
        identity = candidates.identities[row]
        picks.append(
            Pick(
                file=identity.file,
                frame_index=identity.frame_index,
                frame_name=candidates.frame_names[row],
                distance=float(distance),
                row=row,
            )
        )
    return picks


def _pool_vectors(pool: PoolState) -> Vectors:
    # (0, 0): no pool, the width comes with the first block.
    return pool.embeddings if len(pool.embeddings) else np.zeros((0, 0), dtype=np.float32)


@contextmanager
def _rejecting_bad_input(what: str) -> Iterator[None]:
    """selector_rs's ValueError (bad values, widths or arguments) as the client's error."""
    try:
        yield
    except ValueError as e:
        raise InvalidArgument(f"selection rejected {what}: {e}") from e
