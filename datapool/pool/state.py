"""The pool as selection sees it: pooled frames, their vectors, and their identities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from datapool.pool.files import FileRef, FrameIdentity
from datapool.pool.layout import PoolManifest, PoolSegment

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PoolFrame:
    """One row of a segment's entries.json."""

    frame_name: str
    key: str
    file: FileRef
    frame_index: int
    # The pick's distance to the pool and the earlier picks when it was picked (+inf for the
    # first pick into an empty pool), so a run finished from its commit can report its picks.
    # None in rows committed before the pool recorded it.
    distance: float | None = None

    @property
    def identity(self) -> FrameIdentity:
        return FrameIdentity(self.file, self.frame_index)

    def to_json(self) -> dict[str, Any]:
        row = {
            "frame_name": self.frame_name,
            "key": self.key,
            "source": self.file.to_json(),
            "frame_index": self.frame_index,
        }
        if self.distance is not None:
            row["distance"] = self.distance
        return row

    @staticmethod
    def from_json(obj: dict[str, Any]) -> PoolFrame:
        return PoolFrame(
            frame_name=str(obj["frame_name"]),
            key=str(obj["key"]),
            file=FileRef.from_json(obj["source"]),
            frame_index=int(obj["frame_index"]),
            distance=float(obj["distance"]) if obj.get("distance") is not None else None,
        )


@dataclass(frozen=True)
class SegmentData:
    """A segment's loaded rows; `embeddings` is None when the caller did not ask for vectors."""

    segment: PoolSegment
    frames: list[PoolFrame]
    embeddings: Vectors | None


def empty_vectors(dim: int) -> Vectors:
    return np.zeros((0, dim), dtype=np.float32)


class PoolState:
    """The pool loaded at one version: concatenated embeddings in pool order, and identities."""

    def __init__(
        self,
        manifest: PoolManifest | None,
        frames: list[PoolFrame],
        embeddings: Vectors,
    ) -> None:
        self.manifest = manifest
        self.frames = frames
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.identities = {f.identity for f in frames}

    @staticmethod
    def empty() -> PoolState:
        return PoolState(None, [], empty_vectors(0))

    @property
    def version(self) -> int:
        return self.manifest.version if self.manifest else 0

    @property
    def model(self) -> str:
        return self.manifest.model if self.manifest else ""

    @property
    def dim(self) -> int:
        """0 until some commit added frames or declared a dimension."""
        return self.manifest.dim if self.manifest else 0

    def extended(self, manifest: PoolManifest, added: list[SegmentData]) -> PoolState:
        """The state at `manifest`, given the segments committed since this state's version."""
        frames = list(self.frames)
        blocks = [self.embeddings] if len(self.frames) else []
        for data in added:
            if data.embeddings is None:
                raise ValueError("extending a pool state needs the new segments' embeddings")
            frames.extend(data.frames)
            blocks.append(data.embeddings)
        dim = manifest.dim
        embeddings = np.concatenate(blocks, axis=0) if blocks else empty_vectors(dim)
        return PoolState(manifest, frames, embeddings)
