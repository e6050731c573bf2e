"""The selector's data plane: the servicer converts messages and calls this, nothing else."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence

from datapool.errors import FailedPrecondition, InvalidArgument
from datapool.pool.cache_entry import CacheEntry, CacheScope
from datapool.pool.files import FileRef
from datapool.pool.layout import PoolManifest
from datapool.pool.naming import FRAME_FORMATS, frame_suffix
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolState
from services.selector.cached_loads import StagedCacheLoads
from services.selector.candidates import CandidateCollector, decode_vectors, sample_count
from services.selector.commit import PoolCommitter
from services.selector.embedding_cache import CacheLoad, CacheWriter, CacheWrites, EmbeddingCache
from services.selector.metrics import FRAMES_SELECTED, SELECTION_SECONDS
from services.selector.queries import (
    ExportChunk,
    PoolSummary,
    ProcessedListing,
    export_chunks,
    pool_summary,
    processed_listing,
)
from services.selector.run_commit import RunCommit, run_commit
from services.selector.run_vectors import DEFAULT_MAX_RUN_MEMORY_BYTES, RunVectors
from services.selector.selection import StreamingSelection
from services.selector.session import CommitOutcome, SelectionSession, SelectionSpec, SessionRegistry

log = logging.getLogger(__name__)


class SelectStream:
    """One Select call in progress: candidates staged against the pool it started from.

    Each file's candidates are measured against the pool as soon as the file completes,
    while the embedders go on streaming the other files. Each streamed file's vectors go
    to the embedding cache when it completes, unless the spec names no sampling rule.
    """

    def __init__(
        self,
        spec: SelectionSpec,
        repository: PoolRepository,
        pool: PoolState,
        run_vectors: RunVectors | None = None,
    ) -> None:
        self.spec = spec
        self.repository = repository
        self.pool = pool
        # The run's one copy of its vectors (memory, then the spill file), read in place by
        # the collector, selector_rs and Commit.
        self.run_vectors = run_vectors if run_vectors is not None else RunVectors()
        self.collector = CandidateCollector(
            pool_dim=pool.dim, keep=self.run_vectors.keep, frame_suffix=frame_suffix(spec.image_format)
        )
        self.selection = StreamingSelection(pool, keep=self.run_vectors.keep)
        self.cache_writer = (
            CacheWriter(EmbeddingCache(repository.store, CacheScope(spec.model, spec.sampling_key)))
            if spec.sampling_key
            else None
        )
        # Set once finish_select has waited for the writes.
        self.cache_writes = CacheWrites()

    def add_cached(self, entry: CacheEntry) -> None:
        """A file loaded from the embedding cache, taken as if its vectors had streamed in."""
        self.collector.add_batch(entry.file, entry.frame_indices.tolist(), entry.vectors)
        self.selection.add_file(self.collector.complete(entry.file, entry.frame_count, entry.kind))

    def add_batch(
        self, file: FileRef, frame_indices: Sequence[int], data: bytes, dim: int, dtype: str
    ) -> None:
        vectors = decode_vectors(data, len(frame_indices), dim, dtype, file)
        self.collector.add_batch(file, frame_indices, vectors)

    def complete_file(self, file: FileRef, frame_count: int, kind: str) -> None:
        candidates = self.collector.complete(file, frame_count, kind)
        self.selection.add_file(candidates)
        if self.cache_writer is not None:
            self.cache_writer.submit(
                CacheEntry(file, frame_count, candidates.kind, candidates.frame_indices, candidates.vectors)
            )

    def drop_file(self, file: FileRef) -> None:
        self.collector.drop(file)
        self.selection.drop_file(file)


class SelectorService:
    def __init__(
        self,
        sessions: SessionRegistry | None = None,
        committer: PoolCommitter | None = None,
        cached_loads: StagedCacheLoads | None = None,
        max_run_memory_bytes: int = DEFAULT_MAX_RUN_MEMORY_BYTES,
        spill_dir: str | None = None,
    ) -> None:
        self.sessions = sessions if sessions is not None else SessionRegistry()
        # Per Select: its vectors beyond this go to a spill file in spill_dir.
        self.max_run_memory_bytes = max_run_memory_bytes
        self.spill_dir = spill_dir
        self.committer = committer if committer is not None else PoolCommitter()
        self.cached_loads = cached_loads if cached_loads is not None else StagedCacheLoads()

    def pool_summary(self, repository: PoolRepository) -> PoolSummary:
        return pool_summary(repository)

    def processed_files(self, repository: PoolRepository) -> ProcessedListing:
        return processed_listing(repository)

    def export(self, repository: PoolRepository, tag_name: str, with_vectors: bool) -> Iterator[ExportChunk]:
        return export_chunks(repository, tag_name, with_vectors)

    def run_commit(self, repository: PoolRepository, run_id: str) -> RunCommit | None:
        if not run_id:
            raise InvalidArgument("run_id is empty")
        return run_commit(repository, run_id)

    def load_cached(
        self,
        session_id: str,
        repository: PoolRepository,
        scope: CacheScope,
        dim: int,
        files: list[FileRef],
    ) -> CacheLoad:
        """Loads the files' cache entries for the Select that opens with `session_id`; the
        hits answered are exactly the entries staged for it."""
        if not session_id:
            raise InvalidArgument("session_id is empty")
        if not scope.model or not scope.sampling_key:
            raise InvalidArgument(f"scope.model and scope.sampling_key must both be set, got {scope}")
        if dim <= 0:
            raise InvalidArgument(f"scope.dim must be positive, got {dim}")
        staging = self.cached_loads.begin(session_id, scope)
        try:
            load = EmbeddingCache(repository.store, scope).load(files, dim, staging.admit)
            staging.publish()
        except BaseException:
            staging.abandon()
            raise
        if load.not_admitted:
            log.warning(
                "session %s: staged cache loads reached their cap of %d MiB (--max-staged-cache-mb); "
                "%d more file(s) are embedded instead of loaded from the cache",
                session_id,
                self.cached_loads.max_bytes >> 20,
                load.not_admitted,
            )
        return load

    def open_select(self, spec: SelectionSpec, repository: PoolRepository) -> SelectStream:
        """Validates the spec and reserves its session id; pair with finish_select or abandon_select."""
        _validate_spec(spec)
        self.sessions.reserve(spec.session_id)
        try:
            pool = repository.load_state(_base_manifest(repository, spec.base_version))
            if pool.model and spec.model != pool.model:
                raise FailedPrecondition(
                    f"spec.model {spec.model!r} differs from the pool's model {pool.model!r}"
                )
            # Indexes the pool for measuring candidates as they arrive.
            stream = SelectStream(
                spec, repository, pool, RunVectors(self.max_run_memory_bytes, self.spill_dir)
            )
            staged = self.cached_loads.take(spec.session_id)
            if staged is not None and staged.scope != CacheScope(spec.model, spec.sampling_key):
                raise InvalidArgument(
                    f"spec.model {spec.model!r} and spec.sampling_key {spec.sampling_key!r} differ "
                    f"from the scope {staged.scope} the session's cached embeddings were loaded for"
                )
            # The scheduler took these files off its embedding list: without them the run
            # would report them processed yet never select from them.
            loaded = len(staged.entries) if staged is not None else 0
            if loaded != spec.cached_files:
                raise FailedPrecondition(_lost_load_message(spec, staged is not None, loaded))
            # Popped, so each entry's vectors are freed once the collector holds its copy.
            while staged is not None and staged.entries:
                stream.add_cached(staged.entries.pop())
            return stream
        except BaseException:
            self.sessions.close(spec.session_id)
            raise

    def abandon_select(self, stream: SelectStream) -> None:
        if stream.cache_writer is not None:
            stream.cache_writer.abandon()
        self.sessions.close(stream.spec.session_id)

    def finish_select(self, stream: SelectStream, stop: Callable[[], bool] | None = None) -> SelectionSession:
        """Runs the greedy selection and installs the session. `stop` (e.g. "the RPC has
        ended") is polled while it runs; once it returns True the selection gives up
        within about 50 ms with `selector_rs.Cancelled` (pair with abandon_select)."""
        spec = stream.spec
        candidates = stream.collector.build()
        started = time.perf_counter()
        open_count = stream.selection.open_count
        n = sample_count(spec.n_samples, spec.proportion_samples, open_count)
        picks = stream.selection.select(candidates, n, spec.min_distance, stop)
        if stream.cache_writer is not None:
            stream.cache_writes = stream.cache_writer.finish()
        session = SelectionSession(
            spec=spec,
            repository=stream.repository,
            pool=stream.pool,
            candidates=candidates,
            processed=stream.collector.completed_files(),
            n_samples=n,
            picks=picks,
            select_seconds=time.perf_counter() - started,
            candidate_count=open_count,
        )
        SELECTION_SECONDS.observe(session.select_seconds)
        FRAMES_SELECTED.inc(len(picks))
        self.sessions.install(session)
        return session

    def commit(self, session_id: str, tag_name: str, frames: dict[str, str]) -> CommitOutcome:
        return self.committer.commit(self.sessions.get(session_id), tag_name, frames)

    def close_session(self, session_id: str) -> None:
        self.sessions.close(session_id)
        self.cached_loads.drop(session_id)


def _lost_load_message(spec: SelectionSpec, found: bool, loaded: int) -> str:
    if not found:
        return (
            f"the embedding cache load of session {spec.session_id!r} is missing: spec.cached_files is "
            f"{spec.cached_files} but none is staged (the selector restarted, or the load expired or was "
            "closed before the Select); run again"
        )
    return (
        f"spec.cached_files is {spec.cached_files} but the embedding cache load of session "
        f"{spec.session_id!r} holds {loaded} file(s); run again"
    )


def _base_manifest(repository: PoolRepository, version: int | None) -> PoolManifest | None:
    """The manifest the Select measures against: the pinned version, or the newest."""
    if version is None:
        return repository.newest_manifest()
    manifest = repository.manifest(version)
    if version and manifest is None:
        raise FailedPrecondition(
            f"spec.base_version {version}: the pool in {repository.describe()} has no such version"
        )
    return manifest


def _validate_spec(spec: SelectionSpec) -> None:
    if spec.base_version is not None and spec.base_version < 0:
        raise InvalidArgument(f"spec.base_version must be >= 0, got {spec.base_version}")
    if spec.cached_files < 0:
        raise InvalidArgument(f"spec.cached_files must be >= 0, got {spec.cached_files}")
    if spec.n_samples < 0:
        sample_count(spec.n_samples, spec.proportion_samples, 0)
    if math.isnan(spec.min_distance) or spec.min_distance < 0:
        raise InvalidArgument(f"spec.min_distance must be >= 0, got {spec.min_distance}")
    if spec.image_format not in FRAME_FORMATS:
        raise InvalidArgument(
            f"spec.image_format must be one of {', '.join(FRAME_FORMATS)}, got {spec.image_format[:40]!r}"
        )
