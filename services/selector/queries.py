"""Read-only views of the newest pool version: summary, processed files, export."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from datapool.errors import NotFound
from datapool.pool.files import FileRef
from datapool.pool.layout import INITIAL_TAG, PoolManifest, PoolSegment
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolFrame, Vectors

PROCESSED_CHUNK = 10_000
EXPORT_CHUNK = 1_000


@dataclass(frozen=True)
class PoolSummary:
    version: int
    frame_count: int
    dim: int
    model: str
    tags: tuple[PoolSegment, ...]


@dataclass(frozen=True)
class ProcessedListing:
    """The processed files of one manifest, and which manifest: the version a run starts from."""

    version: int
    frame_count: int
    chunks: Iterator[list[FileRef]]


@dataclass(frozen=True)
class ExportChunk:
    frames: list[PoolFrame]
    tag_name: str
    vectors: Vectors | None


def pool_summary(repo: PoolRepository) -> PoolSummary:
    manifest = repo.newest_manifest()
    if manifest is None:
        return PoolSummary(0, 0, 0, "", ())
    return PoolSummary(
        manifest.version, manifest.frame_count, manifest.dim, manifest.model, manifest.tagged_segments()
    )


def processed_files_sorted(repo: PoolRepository) -> Iterator[FileRef]:
    """Every file the newest manifest names as processed, once, in (path, size, etag) order."""
    yield from _processed_sorted(repo, repo.newest_manifest())


def _processed_sorted(repo: PoolRepository, manifest: PoolManifest | None) -> Iterator[FileRef]:
    """Each segment is stored sorted, so a k-way merge yields the union without a set of
    every file: the scheduler merge-joins this with the (key-ordered) listing."""
    if manifest is None:
        return
    previous: tuple[str, int, str] | None = None
    for row in heapq.merge(*(repo.iter_processed_rows(s) for s in manifest.segments)):
        # A file processed again (process_all) sits in several segments; equal ones are adjacent.
        if row != previous:
            yield FileRef(*row)
            previous = row


def processed_file_chunks(repo: PoolRepository, chunk: int = PROCESSED_CHUNK) -> Iterator[list[FileRef]]:
    return processed_listing(repo, chunk).chunks


def processed_listing(repo: PoolRepository, chunk: int = PROCESSED_CHUNK) -> ProcessedListing:
    """The newest manifest, looked up once, and its processed files in chunks."""
    manifest = repo.newest_manifest()
    if manifest is None:
        return ProcessedListing(0, 0, iter(()))
    return ProcessedListing(manifest.version, manifest.frame_count, _chunks(repo, manifest, chunk))


def _chunks(repo: PoolRepository, manifest: PoolManifest, chunk: int) -> Iterator[list[FileRef]]:
    batch: list[FileRef] = []
    for file in _processed_sorted(repo, manifest):
        batch.append(file)
        if len(batch) == chunk:
            yield batch
            batch = []
    if batch:
        yield batch


def export_chunks(
    repo: PoolRepository, tag_name: str, with_vectors: bool, chunk: int = EXPORT_CHUNK
) -> Iterator[ExportChunk]:
    """Pool rows in pool order; one tag's rows only unless the tag names the whole pool."""
    manifest = repo.newest_manifest()
    whole_pool = tag_name in ("", INITIAL_TAG)
    segments = [] if manifest is None else [s for s in manifest.segments if whole_pool or s.tag == tag_name]
    if not whole_pool and not segments:
        raise NotFound(f"tag {tag_name!r} not found in the pool in {repo.describe()}")
    dim = manifest.dim if manifest else 0
    # One segment at a time, so export memory is bounded by the largest commit, not the pool.
    for segment in segments:
        (data,) = repo.load_segments([segment], dim, with_embeddings=with_vectors)
        for start in range(0, len(data.frames), chunk):
            vectors = data.embeddings[start : start + chunk] if data.embeddings is not None else None
            yield ExportChunk(data.frames[start : start + chunk], segment.tag, vectors)
