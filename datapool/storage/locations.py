"""Turns a datasource location message into a Store adapter."""

from __future__ import annotations

from datapool.storage.base import Store, StoreError
from datapool.storage.local import LocalStore
from datapool.v1 import common_pb2


def open_store(location: common_pb2.StoreLocation) -> Store:
    kind = location.WhichOneof("kind")
    if kind == "local":
        if not location.local.root:
            raise StoreError("location.local.root is empty")
        return LocalStore(location.local.root)
    raise StoreError(f"unsupported datasource location kind: {kind!r}")


def describe_location(location: common_pb2.StoreLocation) -> str:
    kind = location.WhichOneof("kind")
    if kind == "local":
        return f"local folder {location.local.root}"
    return f"datasource of kind {kind!r}"


def local_location(root: str) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=root))
