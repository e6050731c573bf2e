"""A local filesystem's OSError as the storage error of its kind, naming the path.

Every errno a user can act on gets its own kind (and so its own status code): a full disk
must not read like a permission problem, nor a permission problem like a bug.
"""

from __future__ import annotations

import errno
from pathlib import Path

from datapool.storage.base import InvalidObjectKey, ObjectNotFound, StoreAccessDenied, StoreError, StoreFull

# The verb of each operation, as messages use it, and the permission it needs.
_PERMISSION = {"writing": "write", "reading": "read", "deleting": "delete", "listing": "list"}


def store_error(e: OSError, doing: str, path: Path, where: str) -> StoreError:
    """`e`, raised while `doing` ("writing", "reading", ...) `path` in `where`, as a StoreError."""
    reason = e.strerror or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"disk full {doing} {path} ({reason}): free space in {where}, then retry")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        permission = _PERMISSION.get(doing, doing)
        return StoreAccessDenied(
            f"access denied: missing permission to {permission} {path} in {where} ({reason})",
            permission=permission,
            path=str(path),
        )
    if e.errno == errno.ENOENT:
        return ObjectNotFound(f"{path} not found in {where} ({reason})")
    if e.errno == errno.ENAMETOOLONG:
        return InvalidObjectKey(f"{doing} {path}: the name is too long for the filesystem of {where}")
    return StoreError(f"{doing} {path} in {where} failed: {reason}")
