"""The object-store interface every datasource backend implements.

Keys are '/'-separated paths relative to the datasource root. The pool's commit
protocol needs exactly one strong primitive from a backend: `put_if_absent`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from datapool.errors import (
    AlreadyExists,
    DatapoolError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)


class StoreError(DatapoolError):
    """A storage operation failed; the message names the store and the key.

    A domain error: each kind below is also the domain error of the status code the
    services answer with (an `ObjectNotFound` is a `NotFound`), so a storage failure
    reaches a user as NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED... rather than
    UNKNOWN; any other is INTERNAL.
    """


class ObjectNotFound(StoreError, NotFound):
    """No object under the key."""


class ObjectExists(StoreError, AlreadyExists):
    """An object already holds the key (`put_if_absent`)."""


class InvalidObjectKey(StoreError, InvalidArgument):
    """A key the store cannot hold (empty, '..', too long for the filesystem)."""


class StoreFull(StoreError, ResourceExhausted):
    """No space left (a full disk or an exhausted quota); the message names the path."""


class StoreNotFoundError(StoreError, NotFound):
    """The bucket or container itself does not exist."""


BucketNotFound = StoreNotFoundError


class StoreAccessDenied(StoreError, PermissionDenied):
    """The credentials are valid but lack a permission ("list", "read", "write" or "delete")."""

    def __init__(self, message: str, *, permission: str, path: str) -> None:
        super().__init__(message)
        self.permission = permission
        self.path = path


class StoreAuthError(StoreError, PermissionDenied):
    """The credentials are wrong, expired or missing.

    Not UNAUTHENTICATED: that would read as the caller's own token being refused.
    """


class StoreUnavailable(StoreError, Unavailable):
    """The store could not be reached, even after retries."""


@dataclass(frozen=True, order=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    # Unix time of the last write, as the listing reports it (gc keeps young orphans);
    # not part of an object's identity.
    modified_unix: float | None = field(default=None, compare=False)
    # Why the listed entry cannot be read (a symlink loop, no permission), for a run to skip
    # it with that reason; empty for an entry that can be read.
    unreadable: str = field(default="", compare=False)


class Store(abc.ABC):
    """A datasource's objects. Implementations must be safe to share between threads."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A human-readable location, for messages (never includes credentials)."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order, streamed."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """The object's info, or None if it does not exist."""

    @abc.abstractmethod
    def read(self, key: str) -> bytes:
        """The whole object; raises ObjectNotFound."""

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        """Bytes [start, end) of the object (to its end when `end` is None), clipped to its size.

        Backends override this with a native ranged read; this fallback reads everything.
        """
        check_range(start, end)
        return self.read(key)[start:end]

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Writes the object atomically (readers see the old or the new bytes)."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Creates the object only if no object has that key; False if one did."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Removes the object; a missing object is not an error."""

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A filesystem path holding the object's bytes while the context is open.

        Decoders want a seekable file; remote backends download to a temporary file.
        """
        import tempfile

        suffix = Path(key).suffix
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(self.read(key))
            tmp.flush()
            yield Path(tmp.name)


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range [{start}, {end}): need 0 <= start <= end")


class ForwardingStore(Store):
    """Forwards every call to `inner`; subclasses override only what they change.

    For wrappers that watch or alter a store's traffic (fault points, tests), so each
    states its one difference instead of re-implementing the interface.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def describe(self) -> str:
        return self.inner.describe()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def stat(self, key: str) -> ObjectInfo | None:
        return self.inner.stat(key)

    def read(self, key: str) -> bytes:
        return self.inner.read(key)

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        return self.inner.read_range(key, start, end)

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, data)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        with self.inner.local_path(key) as path:
            yield path
