"""The one file a request names, checked against what the scheduler's listing saw.

A file is identified by (path, size, etag) (`datapool.pool.files.FileRef`; an empty etag:
the caller did not list the file, so there is nothing to compare). If it changed or vanished
since the listing, embedding it would attach vectors to a version nobody asked about.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from datapool.errors import FailedPrecondition, InvalidArgument, NotFound
from datapool.pool.files import FileRef
from datapool.storage import ObjectNotFound, Store, StoreError, open_store
from datapool.v1 import common_pb2


class SourceFileDeleted(NotFound):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceFileChanged(FailedPrecondition):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_location(location: common_pb2.StoreLocation, field: str) -> Store:
    try:
        return open_store(location)
    except StoreError as e:
        raise InvalidArgument(f"{field}: {e}") from None


def check_unchanged(store: Store, listed: FileRef, when: str = "since listing") -> None:
    info = store.stat(listed.path)
    if info is None:
        raise SourceFileDeleted(f"deleted {when}")
    if listed.etag and (info.size, info.etag) != (listed.size, listed.etag):
        raise SourceFileChanged(f"changed {when}")


@contextlib.contextmanager
def listed_file_path(store: Store, listed: FileRef) -> Iterator[Path]:
    """A local path to the object, after checking it is still the listed version."""
    check_unchanged(store, listed)
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(store.local_path(listed.path))
        except ObjectNotFound:
            raise SourceFileDeleted("deleted since listing") from None
        yield path
