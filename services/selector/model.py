"""Plain value types shared by the selector's domain modules (no gRPC, no storage)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class FileRef:
    """A source object as listed; all three fields together say which bytes were processed."""

    path: str
    size: int
    etag: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "etag": self.etag}

    @staticmethod
    def from_json(obj: dict[str, Any]) -> FileRef:
        return FileRef(path=str(obj["path"]), size=int(obj["size"]), etag=str(obj["etag"]))


@dataclass(frozen=True, order=True)
class FrameIdentity:
    """One frame of one exact file version; the pool never holds the same identity twice."""

    file: FileRef
    frame_index: int


@dataclass(frozen=True)
class Pick:
    file: FileRef
    frame_index: int
    frame_name: str
    # Distance to pool and earlier picks when picked; +inf for the first pick into an empty pool.
    distance: float
    # Row in the session's CandidateSet, so a commit can find the pick's vector.
    row: int

    @property
    def identity(self) -> FrameIdentity:
        return FrameIdentity(self.file, self.frame_index)
