"""The pools the commit tests use: fixture types (the fixtures come from tests/conftest.py), a
pool in memory for replaying scenarios, and a store that reads each immutable pool object once."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from datapool.pool.layout import ROOT
from datapool.storage import ForwardingStore, ObjectInfo, ObjectNotFound, Store
from datapool.v1 import common_pb2

# Makes a fresh, empty pool: its location (for other processes) and a store client.
NewPool = Callable[[], tuple[common_pb2.StoreLocation, Store]]
MakeLocation = Callable[..., common_pb2.StoreLocation]


class MemoryStore(Store):
    """A pool in a dict, for replaying scenarios; copies are cheap and independent."""

    def __init__(self, objects: Mapping[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self._lock = threading.Lock()

    def copy(self) -> MemoryStore:
        with self._lock:
            return MemoryStore(self.objects)

    def describe(self) -> str:
        return "memory store"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted((k, len(v)) for k, v in self.objects.items() if k.startswith(prefix))
        return iter([ObjectInfo(k, n, str(n)) for k, n in items])

    def stat(self, key: str) -> ObjectInfo | None:
        with self._lock:
            data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data), str(len(data)))

    def read(self, key: str) -> bytes:
        with self._lock:
            data = self.objects.get(key)
        if data is None:
            raise ObjectNotFound(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self.objects[key] = bytes(data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self.objects:
                return False
            self.objects[key] = bytes(data)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        raise NotImplementedError


class CachingReads(ForwardingStore):
    """A store whose pool objects are read once: every one is immutable once written.

    Listings and writes go to the store every time, so what exists and what a commit
    creates is always the store's own word.
    """

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self._cache: dict[str, bytes] = {}

    def read(self, key: str) -> bytes:
        if key not in self._cache:
            data = self.inner.read(key)
            if not key.startswith(ROOT):
                return data
            self._cache[key] = data
        return self._cache[key]

    def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        self.inner.delete(key)
