"""Checks, before a datasource is saved, that its credentials allow what datapool will do there."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from datapool.storage.base import Store, StoreAccessDenied

T = TypeVar("T")
_PROBE_BYTES = b"datapool access check"


def verify_access(store: Store, writable: bool) -> None:
    """Lists and reads; with `writable` (a pool), also writes, reads back and deletes a probe object.

    Raises StoreAccessDenied naming the missing permission and the path, or another StoreError
    (missing bucket, rejected credentials, unreachable store) as the store reported it.
    """
    probe = f".datapool/access-check-{uuid.uuid4().hex}"
    if writable:
        # First: a new local pool folder only comes into being with its first write.
        _check(store, "write", probe, lambda: store.put(probe, _PROBE_BYTES))
    first = _check(store, "list", "", lambda: next(iter(store.list()), None))
    if first is not None:
        _check(store, "read", first.key, lambda: store.read_range(first.key, 0, 1))
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
