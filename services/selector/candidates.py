"""Candidates streamed in by the embedders, staged per file until the file is complete."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from datapool.errors import FailedPrecondition, InvalidArgument
from datapool.pool.files import FileRef, FrameIdentity
from datapool.pool.naming import FILE_KINDS, frame_name
from datapool.pool.state import Vectors, empty_vectors
from datapool.vectors import unpack
from services.selector.row_blocks import RowBlocks


def decode_vectors(data: bytes, count: int, dim: int, dtype: str, file: FileRef) -> Vectors:
    """Packed little-endian rows as a float32 count x dim array; names the file on bad input."""
    try:
        vectors = unpack(data, count, dim, dtype)
    except (ValueError, KeyError) as e:
        raise InvalidArgument(f"batch.vectors for {file.path!r}: {e}") from None
    if not np.isfinite(vectors).all():
        raise InvalidArgument(f"batch.vectors for {file.path!r} holds NaN or infinite values")
    return vectors


@dataclass(frozen=True)
class FileCandidates:
    """One complete file's candidates: each frame's last vector, in frame_index order."""

    file: FileRef
    frame_indices: npt.NDArray[np.int64]
    identities: list[FrameIdentity]
    frame_names: list[str]
    vectors: Vectors
    frame_count: int
    kind: str

    def __len__(self) -> int:
        return len(self.frame_indices)


@dataclass
class _StagedFile:
    index_blocks: list[npt.NDArray[np.int64]] = field(default_factory=list)
    vector_blocks: list[Vectors] = field(default_factory=list)
    # Set by file_complete; no batch may follow it.
    final: FileCandidates | None = None

    @property
    def complete(self) -> bool:
        return self.final is not None


@dataclass(frozen=True)
class CandidateSet:
    """Candidates of all complete files, in (file, frame_index) order so results don't
    depend on which embedder replica streamed first."""

    identities: list[FrameIdentity]
    frame_names: list[str]
    # The files' own blocks, not a joined copy (they may live in the run's spill file).
    vectors: RowBlocks
    files: list[FileRef]
    # Each file's first row; its rows are contiguous, in frame_index order.
    file_starts: dict[FileRef, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.identities)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def open_rows(self, pooled: Set[FrameIdentity]) -> npt.NDArray[np.int64]:
        """Rows whose frame is not in the pool yet, so no frame is ever pooled twice."""
        return np.array([i for i, f in enumerate(self.identities) if f not in pooled], dtype=np.int64)


class CandidateCollector:
    def __init__(
        self, pool_dim: int, keep: Callable[[Vectors], Vectors] | None = None, frame_suffix: str = ".png"
    ) -> None:
        # 0: the pool has no vectors yet, so the first batch sets the dimension.
        self.pool_dim = pool_dim
        # The run's frame files' suffix (`.png`, `.jpg`): frame names end in it.
        self.frame_suffix = frame_suffix
        # Where a complete file's vectors are stored (RunVectors.keep: memory or spill file).
        self._keep = keep if keep is not None else _in_memory
        self.dim = pool_dim
        self._files: dict[FileRef, _StagedFile] = {}

    def add_batch(self, file: FileRef, frame_indices: Sequence[int], vectors: Vectors) -> None:
        dim = int(vectors.shape[1])
        if self.pool_dim and dim != self.pool_dim:
            raise FailedPrecondition(
                f"batch dim {dim} for {file.path!r} differs from the pool's dim {self.pool_dim}"
            )
        if self.dim and dim != self.dim:
            raise InvalidArgument(
                f"batch dim {dim} for {file.path!r} differs from earlier batches' {self.dim}"
            )
        self.dim = dim
        staged = self._files.setdefault(file, _StagedFile())
        if staged.complete:
            raise InvalidArgument(f"batch for {file.path!r} arrived after its file_complete")
        indices = np.asarray(frame_indices, dtype=np.int64)
        if len(indices) and indices.min() < 0:
            raise InvalidArgument(f"batch for {file.path!r} has a negative frame index")
        staged.index_blocks.append(indices)
        staged.vector_blocks.append(vectors)

    def complete(self, file: FileRef, frame_count: int, kind: str) -> FileCandidates:
        """Marks the file complete and returns its final candidates (one row per frame)."""
        kind = kind or "video"
        if kind not in FILE_KINDS:
            raise InvalidArgument(f"file_complete.kind {kind!r} for {file.path!r} is not one of {FILE_KINDS}")
        if frame_count < 0:
            raise InvalidArgument(f"file_complete.frame_count {frame_count} for {file.path!r} is negative")
        staged = self._files.setdefault(file, _StagedFile())
        highest = max((int(b.max()) for b in staged.index_blocks if len(b)), default=-1)
        if highest >= frame_count:
            raise InvalidArgument(
                f"file_complete.frame_count {frame_count} for {file.path!r} but frame {highest} was sent"
            )
        if kind == "image" and highest > 0:
            raise InvalidArgument(f"image {file.path!r} has frame {highest}; an image has only frame 0")
        if staged.index_blocks:
            indices = np.concatenate(staged.index_blocks)
            vectors = np.concatenate(staged.vector_blocks, axis=0)
            # A file moved to another replica is streamed again: keep each frame's last vector.
            unique, first_in_reversed = np.unique(indices[::-1], return_index=True)
            rows = len(indices) - 1 - first_in_reversed
            if len(rows) < len(indices) or (np.diff(rows) < 0).any():
                # Only then gather: for a one-hour video, a second copy of its vectors.
                vectors = vectors[rows]
            vectors = self._keep(np.ascontiguousarray(vectors, dtype=np.float32))
        else:
            unique, vectors = np.zeros(0, dtype=np.int64), empty_vectors(self.dim)
        indices_list = unique.tolist()
        identities = [FrameIdentity(file, index) for index in indices_list]
        names = [frame_name(file.path, index, frame_count, kind, self.frame_suffix) for index in indices_list]
        final = FileCandidates(file, unique.astype(np.int64), identities, names, vectors, frame_count, kind)
        # The deduplicated rows replace the batches, so a repeated file_complete finds the same frames.
        staged.index_blocks = [final.frame_indices] if len(final) else []
        staged.vector_blocks = [final.vectors] if len(final) else []
        staged.final = final
        return final

    def drop(self, file: FileRef) -> None:
        self._files.pop(file, None)

    def completed_files(self) -> list[FileRef]:
        return sorted(f for f, s in self._files.items() if s.complete)

    def build(self) -> CandidateSet:
        identities: list[FrameIdentity] = []
        names: list[str] = []
        blocks: list[Vectors] = []
        starts: dict[FileRef, int] = {}
        files = self.completed_files()
        for file in files:
            final = self._files[file].final
            assert final is not None
            starts[file] = len(identities)
            if not len(final):
                continue
            blocks.append(final.vectors)
            identities.extend(final.identities)
            names.extend(final.frame_names)
        return CandidateSet(identities, names, RowBlocks(blocks, self.dim), files, starts)


def _in_memory(vectors: Vectors) -> Vectors:
    return vectors


def sample_count(n_samples: int, proportion_samples: float, candidate_count: int) -> int:
    if n_samples >= 0:
        return n_samples
    if not 0.0 < proportion_samples <= 1.0:
        raise InvalidArgument(
            f"spec.proportion_samples must be in (0, 1] when spec.n_samples is -1, got {proportion_samples}"
        )
    # The epsilon keeps float error (0.1 * 30 = 3.0000000000000004) from adding a sample.
    return math.ceil(proportion_samples * candidate_count - 1e-9)
