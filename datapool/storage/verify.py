"""Checks, before a datasource is saved, that its credentials allow what datapool will do there."""

from __future__ import annotations

import functools
import itertools
import uuid
from collections.abc import Callable
from typing import TypeVar

from datapool.storage.base import ObjectNotFound, Store, StoreAccessDenied

T = TypeVar("T")
_PROBE_BYTES = b"datapool access check"
_PROBE_PREFIX = ".datapool/access-check-"
# Listed objects tried for the read check when earlier ones vanish before they are read.
_LISTED_TO_READ = 8


def verify_access(store: Store, writable: bool) -> None:
    """Lists and reads; with `writable` (a pool), also writes, reads back and deletes a probe object.

    Raises StoreAccessDenied naming the missing permission and the path, or another StoreError
    (missing bucket, rejected credentials, unreachable store) as the store reported it.
    """
    probe = f"{_PROBE_PREFIX}{uuid.uuid4().hex}"
    if writable:
        # First: a new local pool folder only comes into being with its first write.
        _check(store, "write", probe, lambda: store.put(probe, _PROBE_BYTES))
    listed = _check(store, "list", "", lambda: list(itertools.islice(store.list(), _LISTED_TO_READ)))
    # Another scheduler's probe (or any object) may be deleted between the listing and the
    # read: that says nothing about our permissions, so the next listed object is read.
    for key in sorted((i.key for i in listed), key=lambda k: k.startswith(_PROBE_PREFIX)):
        try:
            _check(store, "read", key, functools.partial(store.read_range, key, 0, 1))
            break
        except ObjectNotFound:
            continue
    if writable:
        _check(store, "read", probe, lambda: store.read(probe))
        _check(store, "delete", probe, lambda: store.delete(probe))


def _check(store: Store, permission: str, key: str, op: Callable[[], T]) -> T:
    """Runs `op`; the adapters raise StoreAccessDenied themselves, LocalStore's OS errors become one."""
    try:
        return op()
    except PermissionError as e:
        where = store.describe()
        raise StoreAccessDenied(
            f"access denied: missing permission to {permission} {key or 'objects'} in {where} ({e.strerror})",
            permission=permission,
            path=f"{where}: {key}" if key else where,
        ) from e
