"""A hook that times every store request, for the services' storage latency metrics.

The user package must stay light: nothing here imports a metrics library. A service installs
an observer (`services.common.metrics` does, with its Prometheus histogram); until one is
installed, `open_store` hands out the adapters unwrapped and a request costs nothing extra.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from datapool.storage.base import ForwardingStore, ObjectInfo, Store

# (store kind, operation, seconds, ok): kind is the location's kind ("local", "s3", "gcs",
# "azure"); operation the Store method ("list", "stat", "read", "read_range", "put",
# "put_if_absent", "delete", "local_path").
RequestObserver = Callable[[str, str, float, bool], None]

_observer: RequestObserver | None = None


def set_request_observer(observer: RequestObserver | None) -> None:
    """Times the requests of every store opened from now on (None: stop wrapping new stores)."""
    global _observer
    _observer = observer


def timed(store: Store, kind: str) -> Store:
    """`store`, timed when an observer is installed."""
    observer = _observer
    return store if observer is None else TimedStore(store, kind, observer)


class TimedStore(ForwardingStore):
    """Reports the duration and outcome of each call of `inner` to `observer`."""

    def __init__(self, inner: Store, kind: str, observer: RequestObserver) -> None:
        super().__init__(inner)
        self.kind = kind
        self.observer = observer

    @contextlib.contextmanager
    def _timing(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.observer(self.kind, operation, time.perf_counter() - started, ok)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Observed once per listing: the time spent inside the adapter, page requests
        # included, not the caller's time between entries.
        inner = iter(self.inner.list(prefix))
        spent = 0.0
        ok = False
        try:
            while True:
                started = time.perf_counter()
                try:
                    info = next(inner)
                except StopIteration:
                    ok = True
                    return
                finally:
                    spent += time.perf_counter() - started
                try:
                    yield info
                except GeneratorExit:
                    ok = True  # the caller stopped early: not a failed request
                    raise
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            self.observer(self.kind, "list", spent, ok)

    def stat(self, key: str) -> ObjectInfo | None:
        with self._timing("stat"):
            return self.inner.stat(key)

    def read(self, key: str) -> bytes:
        with self._timing("read"):
            return self.inner.read(key)

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        with self._timing("read_range"):
            return self.inner.read_range(key, start, end)

    def put(self, key: str, data: bytes) -> None:
        with self._timing("put"):
            self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._timing("put_if_absent"):
            return self.inner.put_if_absent(key, data)

    def delete(self, key: str) -> None:
        with self._timing("delete"):
            self.inner.delete(key)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        # Only the download (or the local lookup) is timed, not the caller's use of the file.
        with contextlib.ExitStack() as stack:
            with self._timing("local_path"):
                path = stack.enter_context(self.inner.local_path(key))
            yield path
