"""The hand-off of cache loads from LoadCachedEmbeddings to Select: a Select missing the load
it was promised fails; loads expire on every access, stay under a byte cap (files over it are
embedded instead) and are discarded when their session closed while they were read."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from cache_support import DIM, SCOPE, caching_spec, files_and_vectors, stream
from selector_helpers import file_ref, select

from datapool.errors import FailedPrecondition
from datapool.pool.cache_entry import CacheEntry
from datapool.pool.repository import PoolRepository
from datapool.storage import ForwardingStore, Store
from services.selector import cached_loads
from services.selector import service as service_module
from services.selector.cached_loads import StagedCacheLoads, entry_bytes
from services.selector.service import SelectorService


def entry(frames: int = 4) -> CacheEntry:
    return CacheEntry(
        file_ref(f"f{frames}.mp4"),
        frames,
        "video",
        np.arange(frames, dtype=np.int64),
        np.ones((frames, DIM), dtype=np.float32),
    )


def test_a_select_missing_its_cache_load_fails_instead_of_losing_the_files(
    service: SelectorService, repo: PoolRepository
) -> None:
    files = files_and_vectors(2)
    stream(service, repo, "s1", files)
    assert len(service.load_cached("s2", repo, SCOPE, DIM, list(files)).hits) == 2

    # The selector restarted between LoadCachedEmbeddings and Select: the load is gone.
    restarted = SelectorService()
    with pytest.raises(FailedPrecondition, match=r"missing.*selector restarted.*run again"):
        restarted.open_select(caching_spec("s2", cached_files=2), repo)
    # The refused Select left no session behind.
    restarted.finish_select(restarted.open_select(caching_spec("s2"), repo))

    with pytest.raises(FailedPrecondition, match=r"spec\.cached_files is 3 but .* holds 2 file"):
        service.open_select(caching_spec("s2", cached_files=3), repo)
    # The load was handed over (and let go) by that Select: a retry finds none.
    with pytest.raises(FailedPrecondition, match="missing"):
        service.open_select(caching_spec("s2", cached_files=2), repo)
    assert service.cached_loads.staged_bytes == 0


def test_unclaimed_loads_expire_on_every_access() -> None:
    now = [0.0]
    loads = StagedCacheLoads(ttl_seconds=10, clock=lambda: now[0])
    a = loads.begin("a", SCOPE)
    assert a.admit(entry())
    a.publish()
    now[0] = 5.0
    b = loads.begin("b", SCOPE)
    assert b.admit(entry())
    b.publish()
    assert loads.staged_bytes == 2 * entry_bytes(entry())
    now[0] = 11.0
    # No take or put needed: reading the count expires "a".
    assert loads.staged_bytes == entry_bytes(entry())
    assert loads.take("a") is None
    taken = loads.take("b")
    assert taken is not None and len(taken.entries) == 1 and loads.take("b") is None
    assert loads.staged_bytes == 0

    # A load still being read when its TTL ends admits nothing more and is never handed over.
    slow = loads.begin("slow", SCOPE)
    assert slow.admit(entry())
    now[0] = 22.0
    assert not slow.admit(entry())
    with pytest.raises(FailedPrecondition, match="closed or expired"):
        slow.publish()
    assert loads.take("slow") is None and loads.staged_bytes == 0


def test_staged_bytes_are_capped_and_files_over_the_cap_are_embedded(
    repo: PoolRepository, caplog: pytest.LogCaptureFixture
) -> None:
    files = files_and_vectors(4)
    reference = select(SelectorService(), repo, caching_spec("streamed", n_samples=6), files, "float16")
    size = entry_bytes(SelectorService().load_cached("probe", repo, SCOPE, DIM, list(files)).hits[0])
    service = SelectorService(cached_loads=StagedCacheLoads(max_bytes=2 * size))

    with caplog.at_level(logging.WARNING, logger=service_module.__name__):
        load = service.load_cached("s2", repo, SCOPE, DIM, list(files))
    assert len(load.hits) == 2 and load.not_admitted == 2
    assert service.cached_loads.staged_bytes == 2 * size
    assert any(
        "cap" in r.getMessage() and "2 more file(s) are embedded" in r.getMessage() for r in caplog.records
    )
    # A session loading at the same time gets what is left: nothing.
    other = service.load_cached("s3", repo, SCOPE, DIM, list(files))
    assert other.hits == [] and other.not_admitted == 4

    # The files over the cap are streamed in; the picks are those of streaming them all.
    stream_ = service.open_select(caching_spec("s2", n_samples=6, cached_files=2), repo)
    loaded = {e.file for e in load.hits}
    for file, vectors in files.items():
        if file not in loaded:
            stream_.add_batch(
                file, list(range(len(vectors))), vectors.astype("<f2").tobytes(), DIM, "float16"
            )
            stream_.complete_file(file, len(vectors), "video")
    session = service.finish_select(stream_)
    assert [(p.frame_name, p.distance) for p in session.picks] == [
        (p.frame_name, p.distance) for p in reference.picks
    ]
    # Handing the load over frees its share of the cap.
    assert service.cached_loads.staged_bytes == 0
    assert len(service.load_cached("s4", repo, SCOPE, DIM, list(files)).hits) == 2


class GatedStore(ForwardingStore):
    """Holds every read until `go` is set, so a test can act while a load is being read."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.reading = threading.Event()
        self.go = threading.Event()

    def read(self, key: str) -> bytes:
        self.reading.set()
        assert self.go.wait(10)
        return self.inner.read(key)


def test_a_load_that_ends_after_its_session_closed_is_discarded(
    service: SelectorService, repo: PoolRepository
) -> None:
    files = files_and_vectors(3)
    stream(service, repo, "s1", files)
    gated = GatedStore(repo.store)
    with ThreadPoolExecutor(1) as ex:
        late = ex.submit(service.load_cached, "s2", PoolRepository(gated), SCOPE, DIM, list(files))
        assert gated.reading.wait(10)
        # The scheduler gave up on the run while the selector was still reading.
        service.close_session("s2")
        gated.go.set()
        with pytest.raises(FailedPrecondition, match="closed or expired while"):
            late.result(timeout=10)
    assert service.cached_loads.staged_bytes == 0
    # A load for the closed session arriving even later is refused outright.
    with pytest.raises(FailedPrecondition, match="is closed"):
        service.load_cached("s2", repo, SCOPE, DIM, list(files))
    assert service.cached_loads.staged_bytes == 0


def test_closed_session_ids_are_remembered_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cached_loads, "DROPS_REMEMBERED", 2)
    loads = StagedCacheLoads()
    for session_id in ("a", "b", "c"):
        loads.drop(session_id)
    loads.begin("a", SCOPE).abandon()  # forgotten: the oldest of three
    for session_id in ("b", "c"):
        with pytest.raises(FailedPrecondition, match="is closed"):
            loads.begin(session_id, SCOPE)
