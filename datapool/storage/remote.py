"""What the object-store adapters share: prefix mapping, key rules and error wording."""

from __future__ import annotations

import abc
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from datapool.storage.base import (
    ObjectNotFound,
    Store,
    StoreAccessDenied,
    StoreError,
    StoreNotFoundError,
    StoreUnavailable,
    check_range,
)

# The permission each operation needs, as verify_access and StoreAccessDenied name it.
PERMISSION_OF = {
    "list": "list",
    "stat": "read",
    "read": "read",
    "put": "write",
    "delete": "delete",
}

DEFAULT_PAGE_SIZE = 1000
# Listing pages and upload parts are bounded; these also serve as per-request read timeouts.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 120.0
DEFAULT_MAX_ATTEMPTS = 5
# GCS retries by total time rather than by count.
DEFAULT_RETRY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RemoteOptions:
    """How an object-store adapter talks to its service, the same for every backend.

    Where the store is and how it authenticates come from the location message
    (`common_pb2.S3Location`, `GcsLocation`, `AzureLocation`), built by `datapool.storage.locations`.
    """

    # Keys per listing request.
    page_size: int = DEFAULT_PAGE_SIZE
    # Tries per request (S3, Azure).
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # Seconds of retrying one request (GCS).
    retry_timeout_s: float = DEFAULT_RETRY_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S


DEFAULT_OPTIONS = RemoteOptions()


def normalize_prefix(prefix: str) -> str:
    """ "" or a '/'-terminated prefix; leading slashes are dropped (object names have none)."""
    prefix = prefix.lstrip("/")
    if not prefix:
        return ""
    if any(part in (".", "..") for part in prefix.rstrip("/").split("/")) or "//" in prefix:
        raise ValueError(f"invalid prefix {prefix!r}: empty, '.' or '..' path segments")
    return prefix if prefix.endswith("/") else prefix + "/"


def is_valid_key(key: str) -> bool:
    # The same rule as LocalStore, so a key that works on one backend works on all.
    return bool(key) and not key.startswith("/") and all(p not in ("", ".", "..") for p in key.split("/"))


class RemoteStore(Store):
    """An object store whose keys live under `prefix` inside one bucket or container."""

    def __init__(self, prefix: str, options: RemoteOptions) -> None:
        self.prefix = normalize_prefix(prefix)
        self.options = options
        # Set once the bucket is known to exist, so a 404 afterwards means "no such object".
        self._bucket_seen = False

    @abc.abstractmethod
    def _root(self) -> str:
        """'scheme://bucket/' of the store, without the prefix."""

    def describe(self) -> str:
        return self._root() + self.prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def _name(self, key: str) -> str:
        if not is_valid_key(key):
            raise StoreError(f"invalid object key {key!r} in {self.describe()}")
        return self.prefix + key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) :]

    def _path(self, key: str) -> str:
        return self.describe() + key

    def _denied(self, op: str, key: str, detail: str = "") -> StoreAccessDenied:
        permission = PERMISSION_OF[op]
        path = self._path(key)
        extra = f" ({detail})" if detail else ""
        return StoreAccessDenied(
            f"access denied: missing permission to {permission} {path}{extra}",
            permission=permission,
            path=path,
        )

    def _empty_range(self, key: str, start: int, end: int | None) -> bool:
        """Checks the range of a read_range; True when it is empty (and the object exists)."""
        check_range(start, end)
        if end != start:
            return False
        if self.stat(key) is None:
            raise self._not_found(key)
        return True

    def _unreachable(
        self, op: str, key: str, service: str, e: Exception, tried: str = ""
    ) -> StoreUnavailable:
        """The service did not answer; `tried` says how long it was tried (default: attempts)."""
        tried = tried or f"after {self.options.max_attempts} attempts"
        return StoreUnavailable(
            f"cannot reach {self.describe()} ({service}) to {op} {key!r} {tried}: {type(e).__name__}"
        )

    def _failed(self, op: str, key: str, e: Exception) -> StoreError:
        return StoreError(f"{op} of {key!r} in {self.describe()} failed: {type(e).__name__}")

    def _not_found(self, key: str) -> ObjectNotFound:
        return ObjectNotFound(f"object {key!r} not found in {self.describe()}")

    def _bucket_missing(self, what: str = "bucket") -> StoreNotFoundError:
        return StoreNotFoundError(f"{what} of {self.describe()} does not exist")

    def _check_bucket_after_404(self) -> None:
        """A 404 without an error code may mean a missing bucket; ask once per store."""
        if self._bucket_seen:
            return
        if not self._bucket_exists():
            raise self._bucket_missing()
        self._bucket_seen = True

    @abc.abstractmethod
    def _bucket_exists(self) -> bool: ...

    @abc.abstractmethod
    def _errors(self, op: str, key: str) -> contextlib.AbstractContextManager[None]:
        """Turns the SDK's errors during `op` on `key` into storage errors (the SDK's as cause)."""

    def _put_unless_exists(self, key: str, put: Callable[[], object], exists: type[BaseException]) -> bool:
        """put_if_absent around a conditional write: False when the store refused it because the
        object exists (the SDK raised `exists`)."""
        try:
            with self._errors("put", key):
                put()
        except StoreError as e:
            if isinstance(e.__cause__, exists):
                return False
            raise
        return True

    @abc.abstractmethod
    def _download(self, key: str, out: IO[bytes]) -> None:
        """Streams the object into `out`; raises ObjectNotFound."""

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        with tempfile.NamedTemporaryFile(suffix=Path(key).suffix, prefix="datapool-") as tmp:
            self._download(key, tmp)
            tmp.flush()
            yield Path(tmp.name)
