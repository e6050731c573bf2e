"""Tags as users see them, derived from the pool's manifests through the selector.

Each committing run that added frames made one tag; "initial-tag" is the whole pool.
"""

from __future__ import annotations

from collections.abc import Iterator

from datapool.pool.layout import INITIAL_TAG, frame_file_name
from datapool.v1 import common_pb2, scheduler_pb2, selector_pb2
from services.scheduler.remotes import SelectorClient


def _file_name(entry: selector_pb2.PoolEntry) -> str:
    # The file's name, not the frame's: a run with output_image_format jpg wrote `.jpg` files.
    return frame_file_name(entry.key) if entry.key else entry.frame_name


def tags_from_summary(summary: selector_pb2.PoolSummary) -> list[scheduler_pb2.TagInfo]:
    """The pool's tags, newest first, then the whole pool as "initial-tag"."""
    tags = [
        scheduler_pb2.TagInfo(
            name=t.name, run_id=t.run_id, frame_count=t.frame_count, created_unix_ms=t.created_unix_ms
        )
        for t in reversed(summary.tags)
    ]
    first = min((t.created_unix_ms for t in summary.tags), default=0)
    tags.append(
        scheduler_pb2.TagInfo(name=INITIAL_TAG, frame_count=summary.frame_count, created_unix_ms=first)
    )
    return tags


class TagCatalog:
    def __init__(self, selector: SelectorClient) -> None:
        self.selector = selector

    def all(self, pool: common_pb2.StoreLocation) -> list[scheduler_pb2.TagInfo]:
        return tags_from_summary(self.selector.get_pool(pool))

    def filenames(self, pool: common_pb2.StoreLocation, tag_name: str) -> list[str]:
        return [
            _file_name(e)
            for chunk in self.selector.export_pool(pool, tag_name, with_vectors=False)
            for e in chunk.entries
        ]

    def embeddings(
        self, pool: common_pb2.StoreLocation, tag_name: str
    ) -> Iterator[scheduler_pb2.EmbeddingRows]:
        for chunk in self.selector.export_pool(pool, tag_name, with_vectors=True):
            yield scheduler_pb2.EmbeddingRows(
                filenames=[_file_name(e) for e in chunk.entries], vectors=chunk.vectors
            )
