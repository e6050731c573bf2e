"""Cache entries for the selector tests: files of float16-exact vectors, Selects that write
their entries, Selects fed only from the cache, and a store that counts lists and reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import numpy as np
from selector_helpers import F32, clustered_unit_vectors, file_ref, select, spec

from datapool.pool.cache_entry import CacheScope
from datapool.pool.files import FileRef
from datapool.pool.layout import EMBEDDING_CACHE_PREFIX
from datapool.pool.repository import PoolRepository
from datapool.storage import ForwardingStore, ObjectInfo, Store
from services.selector.service import SelectorService
from services.selector.session import SelectionSession, SelectionSpec

DIM = 32
SAMPLING = "all"
SCOPE = CacheScope("test-model", SAMPLING)


def files_and_vectors(count: int, frames: int = 9, first_seed: int = 0) -> dict[FileRef, F32]:
    # float16 values, as the embedders send them: the cache keeps them exactly.
    return {
        file_ref(f"cam{first_seed + i}.mp4"): clustered_unit_vectors(first_seed + i, 3, frames // 3, DIM)
        .astype(np.float16)
        .astype(np.float32)
        for i in range(count)
    }


def caching_spec(
    session_id: str, n_samples: int = 0, sampling_key: str = SAMPLING, cached_files: int = 0
) -> SelectionSpec:
    return dataclasses.replace(
        spec(session_id, n_samples=n_samples), sampling_key=sampling_key, cached_files=cached_files
    )


def stream(
    service: SelectorService, repo: PoolRepository, session_id: str, files: Mapping[FileRef, F32]
) -> None:
    """Streams the files in as the embedders would, which writes their cache entries."""
    select(service, repo, caching_spec(session_id), files, dtype="float16")
    service.close_session(session_id)


def cache_keys(store: Store) -> list[str]:
    return [i.key for i in store.list(EMBEDDING_CACHE_PREFIX)]


def from_cache(
    service: SelectorService,
    repo: PoolRepository,
    session_id: str,
    files: Mapping[FileRef, F32],
    n_samples: int,
) -> SelectionSession:
    """A Select whose files all come from the cache: no batch is streamed."""
    load = service.load_cached(session_id, repo, SCOPE, DIM, list(files))
    assert sorted(e.file for e in load.hits) == sorted(files)
    return service.finish_select(
        service.open_select(caching_spec(session_id, n_samples, cached_files=len(files)), repo)
    )


class CountingStore(ForwardingStore):
    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.listed = 0
        self.reads: list[str] = []

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in self.inner.list(prefix):
            self.listed += 1
            yield info

    def read(self, key: str) -> bytes:
        self.reads.append(key)
        return self.inner.read(key)


def one_file_loaded_for(service: SelectorService, repo: PoolRepository, session_id: str) -> list[FileRef]:
    files = files_and_vectors(1)
    stream(service, repo, "streamed", files)
    assert len(service.load_cached(session_id, repo, SCOPE, DIM, list(files)).hits) == 1
    return list(files)
