"""Whether one datasource location lies inside another: the same objects seen twice.

A pool inside its own input makes every run re-ingest the frames the last one wrote
(`img1-png-png-png.png`). Local folders are compared after resolving `..` and symlinks;
object stores by endpoint, bucket (or account and container) and normalised prefix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from datapool.storage.remote import normalize_prefix
from datapool.v1 import common_pb2

# The fields that name one bucket (or container) of each kind; the prefix is compared apart.
_CONTAINER_FIELDS = {
    "s3": ("bucket", "endpoint_url"),
    "gcs": ("bucket", "endpoint_url"),
    "azure": ("account_name", "container", "endpoint_url"),
}
# AWS's own S3 endpoints name the same store as no endpoint at all.
_AWS_S3 = re.compile(r"^https?://s3([.-][a-z0-9-]+)?\.amazonaws\.com$")
# The one place a pool may lie inside its input: the prefix Lightly itself reserves in an
# INPUT_OUTPUT bucket. An input listing never reads it, so the pool's frames are never input.
RESERVED_POOL_PREFIX = ".lightly/"


def reserved_pool_location(inp: common_pb2.StoreLocation) -> common_pb2.StoreLocation:
    """The pool of an INPUT_OUTPUT datasource: the input's `.lightly/` prefix (folder, if local)."""
    pool = common_pb2.StoreLocation()
    pool.CopyFrom(inp)
    kind = pool.WhichOneof("kind")
    if kind == "local":
        pool.local.root = os.path.join(inp.local.root, RESERVED_POOL_PREFIX.rstrip("/"))
    elif kind is not None:
        inner = getattr(pool, kind)
        inner.prefix = normalize_prefix(inner.prefix) + RESERVED_POOL_PREFIX
    return pool


def resolved_root(location: common_pb2.StoreLocation) -> Path:
    """A local location's folder with `..` and symlinks resolved (the folder need not exist)."""
    return Path(os.path.realpath(location.local.root))


def prefix_within(outer: common_pb2.StoreLocation, inner: common_pb2.StoreLocation) -> str | None:
    """The key prefix under which `outer` sees `inner`'s objects: "" when both are the same
    location, "a/b/" when `inner` lies inside `outer`, None when `inner` lies elsewhere."""
    kind = outer.WhichOneof("kind")
    if kind is None or kind != inner.WhichOneof("kind"):
        return None
    if kind == "local":
        o, i = resolved_root(outer), resolved_root(inner)
        if o == i:
            return ""
        return i.relative_to(o).as_posix() + "/" if i.is_relative_to(o) else None
    a, b = getattr(outer, kind), getattr(inner, kind)
    if any(_field(kind, f, getattr(a, f)) != _field(kind, f, getattr(b, f)) for f in _CONTAINER_FIELDS[kind]):
        return None
    try:
        pa, pb = normalize_prefix(a.prefix), normalize_prefix(b.prefix)
    except ValueError:
        return None  # a malformed prefix names no objects; open_store refuses it on its own
    return pb[len(pa) :] if pb.startswith(pa) else None


def _field(kind: str, name: str, value: str) -> str:
    if name != "endpoint_url":
        return value
    endpoint = value.strip().rstrip("/").lower()
    return "" if kind == "s3" and _AWS_S3.match(endpoint) else endpoint
