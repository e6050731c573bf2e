"""Object stores behind a datasource: one small interface, one adapter per backend."""

from datapool.storage.base import ObjectExists, ObjectInfo, ObjectNotFound, Store, StoreError
from datapool.storage.local import LocalStore
from datapool.storage.locations import describe_location, open_store

__all__ = [
    "LocalStore",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "Store",
    "StoreError",
    "describe_location",
    "open_store",
]
