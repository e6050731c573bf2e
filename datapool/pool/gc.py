"""Garbage collection: deletes the pool objects no manifest references.

Lost races and crashed commits leave data objects under `.datapool/data/<commit_id>/`
and rendered frames under `frames/<run_id>/` that no manifest names (commit rule 5:
harmless, collected later). This module finds and deletes them. It never deletes a
manifest, anything any manifest references, or anything outside those two prefixes.

The embedding cache (`.datapool/cache/`) is outside them on purpose: no manifest names its
entries, yet they are not orphans. An entry of a file since changed or deleted is never
read again and stays until someone deletes it; deleting any part of the cache is safe at
any time and only costs embedding those files again.

A commit that is known to have failed does not wait for gc: `discard_commit` deletes
its data objects (and, when the whole commit is given up, the run's frames) at once.
The selector calls it; the CLI's `datapool gc` calls `collect_garbage`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from datapool.errors import FailedPrecondition, Unavailable
from datapool.pool.layout import DATA_PREFIX, FRAMES_PREFIX, MANIFESTS_PREFIX, PoolSegment, manifest_version
from datapool.pool.repository import PoolRepository
from datapool.storage import ForwardingStore, LocalStore, ObjectInfo, Store, StoreError

log = logging.getLogger(__name__)

# A commit writes its frames and data objects first and its manifest last, so for a
# while every object of an in-flight commit looks orphaned. Only objects older than
# this are deleted: long enough for any commit to finish (its data objects are written
# moments before its manifest; its frames are rendered just before it commits, and a
# session lives at most an hour), short enough to reclaim space the same day.
DEFAULT_MIN_AGE_S = 3600.0
# A manifest created while we read the others may reference objects we listed; if the
# newest version moves we read the manifests again, a few times at most.
_STABLE_READ_TRIES = 5

# The Unix time an object was last written, or None when the backend cannot tell.
ModifiedTime = Callable[[Store, ObjectInfo], float | None]


@dataclass(frozen=True)
class GcObject:
    key: str
    size: int
    # Seconds since the object was last written; None if unknown (then it is never deleted).
    age_s: float | None


@dataclass
class GcReport:
    manifests: int = 0
    referenced_data: int = 0
    referenced_frames: int = 0
    # Orphans old enough to delete: deleted, or, on a dry run, those that would be.
    deleted: list[GcObject] = field(default_factory=list)
    # Orphans kept because they are younger than the grace period (or of unknown age).
    kept_young: list[GcObject] = field(default_factory=list)
    dry_run: bool = False

    @property
    def deleted_bytes(self) -> int:
        return sum(o.size for o in self.deleted)


@dataclass(frozen=True)
class _References:
    version: int
    manifests: int
    commit_ids: frozenset[str]
    data_keys: frozenset[str]
    frame_keys: frozenset[str]


def collect_garbage(
    store: Store,
    min_age_s: float = DEFAULT_MIN_AGE_S,
    dry_run: bool = False,
    modified_time: ModifiedTime | None = None,
    clock: Callable[[], float] = time.time,
) -> GcReport:
    """Deletes (or, with dry_run, only lists) orphaned data objects and frames."""
    if min_age_s < 0:
        raise ValueError(f"min_age_s must be >= 0, got {min_age_s}")
    repo = PoolRepository(store)
    mtime = modified_time or object_modified_time
    # List the candidates before reading the manifests: a manifest that appears after
    # our read can then only reference objects that are younger than our listing or that
    # its commit wrote long before (the grace period covers those).
    candidates = list(_listing(store, DATA_PREFIX)) + list(_listing(store, FRAMES_PREFIX))
    now = clock()
    refs = _stable_references(repo)
    report = GcReport(
        manifests=refs.manifests,
        referenced_data=sum(1 for i in candidates if _is_referenced_data(i.key, refs)),
        referenced_frames=sum(1 for i in candidates if i.key in refs.frame_keys),
        dry_run=dry_run,
    )
    for info in candidates:
        if _is_referenced_data(info.key, refs) or info.key in refs.frame_keys:
            continue
        modified = mtime(store, info)
        obj = GcObject(info.key, info.size, None if modified is None else max(0.0, now - modified))
        if obj.age_s is None or obj.age_s < min_age_s:
            report.kept_young.append(obj)
        else:
            report.deleted.append(obj)
    if dry_run or not report.deleted:
        return report
    # One last look: a commit that landed since our read must not lose anything.
    if repo.newest_version() != refs.version:
        refs = _stable_references(repo)
        report.deleted = [
            o for o in report.deleted if not _is_referenced_data(o.key, refs) and o.key not in refs.frame_keys
        ]
    for obj in report.deleted:
        try:
            store.delete(obj.key)
        except StoreError as e:
            raise Unavailable(f"cannot delete {obj.key} from {store.describe()}: {e}") from e
        log.info("gc deleted %s", obj.key)
    _remove_empty_data_folders(store, report.deleted)
    return report


def discard_commit(repo: PoolRepository, commit_id: str, version: int, frame_keys: Iterable[str] = ()) -> int:
    """Deletes what commit `commit_id` wrote (its data objects, and `frame_keys`) once it is
    certain that no manifest can ever name them: the manifest of `version` is absent or
    another commit's, and `commit_id` is never used again. Best effort: whatever cannot be
    deleted, or when the manifest cannot be read, is left to gc. Returns how many objects
    were deleted.
    """
    try:
        manifest = repo.manifest(version)
    except Exception as e:  # unsure means keep
        log.warning("commit %s failed; its objects are left for gc: %s", commit_id, e)
        return 0
    if manifest is not None and manifest.commit_id == commit_id:
        return 0  # it did land
    try:
        keys = [i.key for i in repo.store.list(f"{DATA_PREFIX}{commit_id}/")] + list(frame_keys)
    except StoreError as e:
        log.warning("commit %s failed; its objects are left for gc: %s", commit_id, e)
        return 0
    deleted: list[GcObject] = []
    for key in keys:
        try:
            repo.store.delete(key)
        except StoreError as e:
            log.warning("cannot delete %s of failed commit %s (gc will): %s", key, commit_id, e)
            continue
        deleted.append(GcObject(key, 0, None))
    _remove_empty_data_folders(repo.store, deleted)
    log.info("commit %s failed: deleted its %d object(s)", commit_id, len(deleted))
    return len(deleted)


def _listing(store: Store, prefix: str) -> Iterator[ObjectInfo]:
    try:
        yield from store.list(prefix)
    except StoreError as e:
        raise Unavailable(f"cannot list {prefix} in {store.describe()}: {e}") from e


def _is_referenced_data(key: str, refs: _References) -> bool:
    if not key.startswith(DATA_PREFIX):
        return False
    commit_id = key[len(DATA_PREFIX) :].split("/", 1)[0]
    return key in refs.data_keys or commit_id in refs.commit_ids


def _stable_references(repo: PoolRepository) -> _References:
    for _ in range(_STABLE_READ_TRIES):
        refs = _references(repo)
        if repo.newest_version() == refs.version:
            return refs
    raise Unavailable(
        f"the pool in {repo.describe()} kept changing while gc read its manifests; run gc again later"
    )


def _references(repo: PoolRepository) -> _References:
    """Everything any manifest names: one unreadable manifest or entries object stops gc."""
    versions = sorted(
        v for v in (manifest_version(i.key) for i in _listing(repo.store, MANIFESTS_PREFIX)) if v is not None
    )
    segments: dict[str, PoolSegment] = {}
    for version in versions:
        manifest = repo.manifest(version)
        if manifest is None:
            raise Unavailable(f"pool manifest version {version} vanished while gc read it")
        for segment in manifest.segments:
            segments.setdefault(segment.commit_id, segment)
    data_keys: set[str] = set()
    frame_keys: set[str] = set()
    for segment in segments.values():
        data_keys.update(_segment_keys(segment))
        try:
            frame_keys.update(f.key for f in repo.load_frames(segment))
        except FailedPrecondition as e:
            # Without its entries we cannot know which frames a segment names.
            raise FailedPrecondition(f"gc stopped, nothing deleted: {e}") from e
    return _References(
        version=versions[-1] if versions else 0,
        manifests=len(versions),
        commit_ids=frozenset(segments),
        data_keys=frozenset(data_keys),
        frame_keys=frozenset(frame_keys),
    )


def _segment_keys(segment: PoolSegment) -> Iterator[str]:
    """Every key a segment names, whatever shape its keys record takes."""

    def flatten(value: object) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                yield from flatten(getattr(value, f.name))
        elif isinstance(value, Iterable):
            for item in value:
                yield from flatten(item)

    yield from flatten(segment.keys)


def object_modified_time(store: Store, info: ObjectInfo) -> float | None:
    """When the object was last written, as its listing reported it."""
    del store  # every backend's listing carries the time; kept for the ModifiedTime shape
    return info.modified_unix


def _remove_empty_data_folders(store: Store, deleted: list[GcObject]) -> None:
    # Object stores have no folders; a local pool would keep one empty folder per
    # collected commit. Commit ids are never reused, so no writer can be filling one.
    while isinstance(store, ForwardingStore):  # a timing or fault-point wrapper
        store = store.inner
    if not isinstance(store, LocalStore):
        return
    folders = {Path(store.root, *o.key.split("/")[:-1]) for o in deleted if o.key.startswith(DATA_PREFIX)}
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            continue
