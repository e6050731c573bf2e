"""Which listed files are new: a merge-join of two key-ordered streams.

The INPUT listing comes in key order (every Store lists that way) and the selector
streams the pool's processed files sorted by (path, size, etag), so one pass over both
finds the new files while holding only the files of the current path, never the set of
every processed file (900k of them for a large pool).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from datapool.storage import ObjectInfo


class FileLike(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def etag(self) -> str: ...


class StreamOrderError(Exception):
    """A stream the merge-join needs in order was not; the message says which and where."""


def _ordered_listing(listing: Iterable[ObjectInfo]) -> Iterator[ObjectInfo]:
    previous: str | None = None
    for obj in listing:
        if previous is not None and obj.key <= previous:
            raise StreamOrderError(
                f"the INPUT listing is not in key order: {obj.key!r} came after {previous!r}"
            )
        previous = obj.key
        yield obj


def new_objects(listing: Iterable[ObjectInfo], processed: Iterable[FileLike]) -> Iterator[ObjectInfo]:
    """The listed objects whose (key, size, etag) is not among the processed files.

    A path processed with another size or etag is new (the file was replaced); a
    processed path that is no longer listed is simply passed over (deleted from INPUT).
    """
    done = iter(processed)
    # (path, size, etag) of the next processed file; None once the stream is spent.
    head = _next_row(done)
    for obj in _ordered_listing(listing):
        key = obj.key
        while head is not None and head[0] < key:
            head = _next_row(done, head)
        if head is None or head[0] != key:
            yield obj
            continue
        # Usually one processed version per path; a replaced file has had several.
        seen = False
        while head is not None and head[0] == key:
            seen = seen or (head[1] == obj.size and head[2] == obj.etag)
            head = _next_row(done, head)
        if not seen:
            yield obj


def _next_row(
    done: Iterator[FileLike], previous: tuple[str, int, str] | None = None
) -> tuple[str, int, str] | None:
    f = next(done, None)
    if f is None:
        return None
    row = (f.path, f.size, f.etag)
    if previous is not None and row < previous:
        raise StreamOrderError(
            f"the pool's processed files are not sorted: {row[0]!r} came after {previous[0]!r}"
        )
    return row
