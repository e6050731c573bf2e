"""Plain value types of selection (no gRPC, no storage): a pick and the identities it names."""

from __future__ import annotations

from dataclasses import dataclass

from datapool.pool.files import FileRef, FrameIdentity

__all__ = ["FileRef", "FrameIdentity", "Pick"]


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
