"""A source file's identity: which bytes were processed, in one shape everywhere.

(path, size, etag) together say which version of a file a run embedded; the pool's
processed-file rows, the selector's picks, the embedder's checks and the scheduler's
diff all compare exactly these three. Messages, listings and stored rows convert at the
boundary with the `from_*` / `to_*` functions here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datapool.errors import InvalidArgument

if TYPE_CHECKING:
    from datapool.storage import ObjectInfo
    from datapool.v1 import common_pb2


@dataclass(frozen=True, order=True)
class FileRef:
    """A source object as listed; all three fields together say which bytes were processed.

    Ordered by (path, size, etag): the order processed-file segments are stored in.
    An empty etag means the caller did not list the file, so there is nothing to compare.
    """

    path: str
    size: int
    etag: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "etag": self.etag}

    @staticmethod
    def from_json(obj: dict[str, Any]) -> FileRef:
        return FileRef(path=str(obj["path"]), size=int(obj["size"]), etag=str(obj["etag"]))

    def to_row(self) -> list[Any]:
        """The stored processed-file row: `[path, size, etag]`."""
        return [self.path, self.size, self.etag]

    @staticmethod
    def from_row(row: Sequence[Any]) -> FileRef:
        path, size, etag = row
        return FileRef(str(path), int(size), str(etag))

    def to_proto(self) -> common_pb2.FileRef:
        from datapool.v1 import common_pb2

        return common_pb2.FileRef(path=self.path, size=self.size, etag=self.etag)

    @staticmethod
    def from_proto(message: common_pb2.FileRef, field: str = "file") -> FileRef:
        """InvalidArgument naming `field` when the message names no path."""
        if not message.path:
            raise InvalidArgument(f"{field}.path is empty")
        return FileRef(message.path, message.size, message.etag)

    @staticmethod
    def from_listing(info: ObjectInfo) -> FileRef:
        return FileRef(info.key, info.size, info.etag)


@dataclass(frozen=True, order=True)
class FrameIdentity:
    """One frame of one exact file version; the pool never holds the same identity twice."""

    file: FileRef
    frame_index: int
