"""Read-only views of a pool for `datapool view` and report downloads: frames with their
vectors, rendered frames, and the HTML reports runs wrote.

Nothing here writes: the view's server only ever reaches the pool through these calls.
Pooled frames come from the selector (ExportPool, as tags and exports do); frames the pool
does not hold come from the pool's embedding cache, read here with the pool format's entry
decoder (datapool.pool.cache_entry, as the selector reads it) so that an entry is checked
(checksum, shape) exactly as a run would check it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import numpy as np

from datapool.errors import InvalidArgument, NotFound
from datapool.pool.cache_entry import CacheScope, UnusableEntry, decode_entry
from datapool.pool.files import FileRef
from datapool.pool.layout import EMBEDDING_CACHE_PREFIX, FRAMES_PREFIX
from datapool.storage import ObjectNotFound, StoreError, open_store
from datapool.v1 import common_pb2, scheduler_pb2
from datapool.vectors import to_batch
from services.scheduler.remotes import SelectorClient
from services.scheduler.report import report_key
from services.scheduler.report.write import wait_for_report

log = logging.getLogger(__name__)

_FRAME_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_ROWS_PER_MESSAGE = 2048
# A run's report.html is drawn after the run ends; a download right then waits this long for it.
REPORT_WAIT_S = 20.0


class PoolView:
    def __init__(self, selector: SelectorClient) -> None:
        self.selector = selector

    def frames(self, pool: common_pb2.StoreLocation, with_cache: bool) -> Iterator[scheduler_pb2.ViewFrames]:
        summary = self.selector.get_pool(pool)
        version = summary.version
        held: set[tuple[str, int]] = set()
        for chunk in self.selector.export_pool(pool, "", with_vectors=True):
            frames = [
                scheduler_pb2.ViewFrame(
                    frame_name=e.frame_name,
                    key=e.key,
                    source_path=e.source_path,
                    frame_index=e.frame_index,
                    tag_name=e.tag_name,
                    pooled=True,
                )
                for e in chunk.entries
            ]
            held.update((f.source_path, f.frame_index) for f in frames)
            yield scheduler_pb2.ViewFrames(pool_version=version, frames=frames, vectors=chunk.vectors)
        if with_cache and summary.model:
            yield from self._cached(pool, version, summary.model, summary.dim, held)

    def _cached(
        self, pool: common_pb2.StoreLocation, version: int, model: str, dim: int, held: set[tuple[str, int]]
    ) -> Iterator[scheduler_pb2.ViewFrames]:
        store = open_store(pool)
        try:
            keys = [o.key for o in store.list(EMBEDDING_CACHE_PREFIX) if o.key.endswith(".emb")]
        except StoreError as e:
            log.warning("cannot list the embedding cache of %s: %s", store.describe(), e)
            return
        for key in keys:
            try:
                data = store.read(key)
                header = json.loads(data[: data.index(b"\n")])
                if header.get("model") != model:
                    continue
                path, size, etag = header["file"]
                scope = CacheScope(model=model, sampling_key=str(header["sampling_key"]))
                entry = decode_entry(data, scope, FileRef(str(path), int(size), str(etag)), dim)
            except (StoreError, ValueError, KeyError, TypeError, UnusableEntry) as e:
                # The view shows what it can; a run would embed such a file again.
                log.warning("embedding cache entry %s left out of the view: %s", key, e)
                continue
            keep = [i for i, f in enumerate(entry.frame_indices) if (entry.file.path, int(f)) not in held]
            held.update((entry.file.path, int(entry.frame_indices[i])) for i in keep)
            for start in range(0, len(keep), _ROWS_PER_MESSAGE):
                rows = keep[start : start + _ROWS_PER_MESSAGE]
                path, indices = entry.file.path, entry.frame_indices
                frames = [
                    scheduler_pb2.ViewFrame(source_path=path, frame_index=int(indices[i])) for i in rows
                ]
                vectors = to_batch(np.asarray(entry.vectors[rows], np.float32))
                yield scheduler_pb2.ViewFrames(pool_version=version, frames=frames, vectors=vectors)

    def frame(self, pool: common_pb2.StoreLocation, key: str) -> scheduler_pb2.FrameImage:
        suffix = key[key.rfind(".") :].lower() if "." in key else ""
        # Only rendered frames: the view must not become a way to read anything in the pool.
        if not key.startswith(FRAMES_PREFIX) or ".." in key.split("/") or suffix not in _FRAME_TYPES:
            raise InvalidArgument(f"key {key!r} is not a rendered frame (frames/<run id>/<name>.png|.jpg)")
        try:
            data = open_store(pool).read(key)
        except ObjectNotFound:
            raise NotFound(f"frame {key!r} is not in the pool") from None
        return scheduler_pb2.FrameImage(data=data, content_type=_FRAME_TYPES[suffix])

    def report_html(self, pool: common_pb2.StoreLocation, run_id: str) -> scheduler_pb2.RunReportHtml:
        wait_for_report(run_id, REPORT_WAIT_S)
        key = report_key(run_id, "report.html")
        try:
            return scheduler_pb2.RunReportHtml(html=open_store(pool).read(key))
        except ObjectNotFound:
            raise NotFound(f"run {run_id} has no {key} in its pool datasource") from None
