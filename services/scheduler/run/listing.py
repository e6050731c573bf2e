"""Stage 2, list and diff: one streaming pass over the INPUT listing, media vs. the rest,
then new vs. processed.

Memory is bounded by the new files (the run's work list) and the skipped ones, never by
the whole listing or by the files the pool has processed (see `diff`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from datapool import media_types
from datapool.run_report import PoolPoint, SkippedFile
from datapool.storage import ObjectInfo, StoreError, open_store
from datapool.storage.nesting import RESERVED_POOL_PREFIX, prefix_within
from datapool.v1 import common_pb2, scheduler_pb2, selector_pb2
from services.scheduler.diff import StreamOrderError, new_objects
from services.scheduler.file_names import name_problem, printable
from services.scheduler.run.context import RunContext, RunFailed, RunSpec
from services.scheduler.run.interfaces import ProcessedListing, SelectorError


class PoolFiles(Protocol):
    """The selector calls listing needs (a `Selector` is one)."""

    def get_pool(self, pool: common_pb2.StoreLocation) -> selector_pb2.PoolSummary: ...

    def processed_files(self, pool: common_pb2.StoreLocation) -> ProcessedListing: ...


@dataclass
class Listing:
    where: str
    kind: str
    # The pool the run starts from: its diff and its Select both read this version.
    pool: PoolPoint
    listed: int = 0
    media: int = 0
    new: list[common_pb2.FileRef] = field(default_factory=list)
    not_media: list[SkippedFile] = field(default_factory=list)

    def nothing_new_note(self) -> str:
        if self.listed == 0:
            return f"the INPUT datasource {self.where} is empty"
        if self.media == 0:
            return f"the INPUT datasource {self.where} has no {self.kind} files ({self.listed} other file(s))"
        return f"the pool has processed all {self.media} {self.kind} file(s) in {self.where}"


def list_and_diff(ctx: RunContext) -> Listing:
    """The run's new files; the report learns the pool it starts from and the file counts."""
    spec = ctx.spec
    with ctx.timed("list_and_diff"):
        listing = list_new_files(spec, ctx.selector)
    ctx.report.pool_before = listing.pool
    files = ctx.report.files
    files.listed, files.media, files.new = listing.listed, listing.media, len(listing.new)
    files.process_all = spec.config.process_all
    ctx.tally.skipped.extend(listing.not_media)
    ctx.observer.set_progress(files_total=len(listing.new), files_skipped=len(listing.not_media))
    return listing


def list_new_files(spec: RunSpec, selector: PoolFiles) -> Listing:
    # The newest manifest is looked up once per run, here: with process_all no file counts
    # as processed, so only the version is asked for. A failure of this first call ends the
    # run as "a service the scheduler depends on failed" (runs.py).
    processed: Iterator[common_pb2.FileRef]
    if spec.config.process_all:
        summary = selector.get_pool(spec.pool)
        pool, processed = PoolPoint(version=summary.version, frames=summary.frame_count), iter(())
    else:
        listing = selector.processed_files(spec.pool)
        pool, processed = listing.pool, listing.files
    store = open_store(spec.input)
    videos = spec.dataset_type == scheduler_pb2.VIDEOS
    takes = media_types.is_video if videos else media_types.is_image
    kind = "a video" if videos else "an image"
    exclude = nested_pool_prefix(spec.input, spec.pool)
    result = Listing(where=store.describe(), kind="video" if videos else "image", pool=pool)

    def media() -> Iterator[ObjectInfo]:
        for obj in store.list():
            if obj.key.startswith(RESERVED_POOL_PREFIX) or (
                exclude is not None and obj.key.startswith(exclude)
            ):
                continue
            result.listed += 1
            problem = obj.unreadable or name_problem(obj.key)
            if problem:
                result.not_media.append(SkippedFile(path=printable(obj.key), reason=problem))
            elif takes(obj.key):
                result.media += 1
                yield obj
            else:
                ext = media_types.extension(obj.key) or "(none)"
                result.not_media.append(
                    SkippedFile(path=obj.key, reason=f"not {kind} file (extension {ext})")
                )

    try:
        for obj in new_objects(media(), processed):
            result.new.append(common_pb2.FileRef(path=obj.key, size=obj.size, etag=obj.etag))
    except StoreError as e:
        raise RunFailed(f"cannot list the INPUT datasource: {e}") from None
    except StreamOrderError as e:
        raise RunFailed(f"cannot tell new files from processed ones: {e}") from None
    except SelectorError as e:
        raise RunFailed(f"cannot read the pool's processed files: {e}") from None
    return result


def nested_pool_prefix(inp: common_pb2.StoreLocation, pool: common_pb2.StoreLocation) -> str | None:
    """The key prefix of the pool inside the INPUT datasource, when the input holds the pool.

    The pool's own frames and state must never be listed as input, whatever the store.
    """
    # Normalised (`..`, symlinks) so that `in/sub/../pool` is excluded as `pool/`.
    return prefix_within(inp, pool) or None
