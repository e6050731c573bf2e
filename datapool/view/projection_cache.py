"""Projections per pool version, computed in the background, each placed with the last fit.

A page asks for (dataset, pool version, method, rows). The answer is computed once, on a
worker thread (UMAP's first fit compiles numba kernels and t-SNE takes minutes, longer than an
HTTP request should hang), and kept. A new pool version of a dataset is placed with that
dataset's last fit of the method (projection.extend) while the fit covers the rows, so the
points earlier versions drew stay where they were.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from datapool.view.projection import INCREMENTAL, Array, Fit, check, extend, fit

# Projections kept at once (per dataset, pool version, method and row count).
_CACHED = 8
Key = tuple[str, int, str, int]


class ProjectionCache:
    """Projections by (dataset, pool version, method, rows): the embedding cache can grow
    while the pool version stays, so the row count is part of the key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[Key, Array] = OrderedDict()
        self._running: dict[Key, tuple[Future[Array], float]] = {}
        self._fits: dict[tuple[str, str], Fit] = {}
        # Two workers: a PCA is not queued behind a UMAP or t-SNE fit of minutes.
        self._workers = ThreadPoolExecutor(2, thread_name_prefix="view-projection")
        self.computed = 0  # projections computed
        self.fitted = 0  # of which fitted from scratch (the others placed with a kept fit)

    def get(
        self,
        dataset: str,
        version: int,
        method: str,
        vectors: Array,
        ids: Callable[[], Sequence[str]] | None = None,
        wait_s: float | None = None,
    ) -> Array | None:
        """The projection; None if it is still being computed after `wait_s` seconds (None:
        wait for it). `ids` names the rows (a frame's id stays across versions)."""
        key = (dataset, version, check(method), len(vectors))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            if key not in self._running:
                job = self._workers.submit(self._compute, key, vectors, ids)
                self._running[key] = (job, time.monotonic())
            job = self._running[key][0]
        try:
            return job.result(timeout=wait_s)
        except FutureTimeout:
            return None

    def computing_for(self, dataset: str, version: int, method: str, rows: int) -> float:
        """Seconds the projection has been computing (0 if it is not)."""
        with self._lock:
            running = self._running.get((dataset, version, method, rows))
        return time.monotonic() - running[1] if running else 0.0

    def _compute(self, key: Key, vectors: Array, ids: Callable[[], Sequence[str]] | None) -> Array:
        dataset, _, method, _ = key
        try:
            with self._lock:
                previous = self._fits.get((dataset, method))
            names = ids() if ids is not None and method == "umap" else None
            kept: Fit | None
            if previous is not None and previous.covers(vectors):
                xy, kept = extend(previous, vectors, names)
            else:
                xy, kept = fit(vectors, method, names)
                with self._lock:
                    self.fitted += 1
            with self._lock:
                self.computed += 1
                if kept is not None and method in INCREMENTAL:
                    self._fits[(dataset, method)] = kept
                self._items[key] = xy
                while len(self._items) > _CACHED:
                    self._items.popitem(last=False)
            return xy
        finally:
            with self._lock:
                self._running.pop(key, None)
