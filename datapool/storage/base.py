"""The object-store interface every datasource backend implements.

Keys are '/'-separated paths relative to the datasource root. The pool's commit
protocol needs exactly one strong primitive from a backend: `put_if_absent`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class StoreError(Exception):
    """A storage operation failed; the message names the store and the key."""


class ObjectNotFound(StoreError):
    pass


class ObjectExists(StoreError):
    pass


@dataclass(frozen=True, order=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


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
