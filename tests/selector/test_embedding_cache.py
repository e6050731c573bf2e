"""The pool's embedding cache in the selector: entries written as files complete and found by
the next lookup, misses for changed files, other models, sampling rules and decoders, unusable
entries as misses, lookups that read only what they need, and gc leaving entries alone."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from cache_support import (
    DIM,
    SAMPLING,
    SCOPE,
    CountingStore,
    cache_keys,
    caching_spec,
    files_and_vectors,
    from_cache,
    stream,
)
from selector_helpers import file_ref, rendered_picks, select, spec

from datapool.config import FrameSampling
from datapool.pool.cache_entry import CacheScope
from datapool.pool.gc import collect_garbage
from datapool.pool.layout import DATA_PREFIX
from datapool.pool.repository import PoolRepository
from datapool.storage import LocalStore, open_store
from datapool.v1 import common_pb2
from services.embedder import decode
from services.scheduler.pipeline import cache_sampling_key
from services.selector import embedding_cache
from services.selector.embedding_cache import EmbeddingCache
from services.selector.service import SelectorService


def test_completed_files_are_written_and_a_later_session_loads_them(
    service: SelectorService, repo: PoolRepository
) -> None:
    files = files_and_vectors(3)
    select(service, repo, caching_spec("s1", n_samples=2), files, dtype="float16")
    assert len(cache_keys(repo.store)) == 3

    new = file_ref("new.mp4")
    load = service.load_cached("s2", repo, SCOPE, DIM, [*files, new])
    assert load.unreadable == 0
    assert sorted(e.file for e in load.hits) == sorted(files)
    for entry in load.hits:
        assert entry.kind == "video" and entry.frame_count == len(files[entry.file])
        assert entry.frame_indices.tolist() == list(range(len(files[entry.file])))
        np.testing.assert_array_equal(entry.vectors, files[entry.file])


def test_a_select_without_sampling_key_writes_nothing(service: SelectorService, repo: PoolRepository) -> None:
    select(service, repo, spec("s1", n_samples=2), files_and_vectors(2), dtype="float16")
    assert cache_keys(repo.store) == []


@pytest.mark.parametrize(
    ("change", "scope", "dim"),
    [
        ("etag", SCOPE, DIM),
        ("size", SCOPE, DIM),
        ("none", CacheScope("other-model", SAMPLING), DIM),
        ("none", CacheScope(SCOPE.model, "every_nth=2"), DIM),
        ("none", SCOPE, DIM * 2),
    ],
)
def test_changed_file_other_model_rule_or_width_is_a_miss(
    service: SelectorService, repo: PoolRepository, change: str, scope: CacheScope, dim: int
) -> None:
    files = files_and_vectors(1)
    stream(service, repo, "s1", files)
    (file,) = files
    if change == "etag":
        file = dataclasses.replace(file, etag="e2")
    elif change == "size":
        file = dataclasses.replace(file, size=file.size + 1)
    load = service.load_cached("s2", repo, scope, dim, [file])
    assert load.hits == []


def test_entries_of_another_decoder_numbering_are_misses(
    service: SelectorService, repo: PoolRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frame numbers of damaged streams depend on the decoder: the scheduler's scope names it."""
    files = files_and_vectors(2)
    every_frame = FrameSampling()
    before = cache_sampling_key(every_frame, decode.numbering_key())
    assert (
        before
        == f"all;numbering={decode.NUMBERING_VERSION};pyav={av.__version__};ffmpeg={av.ffmpeg_version_info}"
    )
    select(service, repo, caching_spec("s1", sampling_key=before), files, dtype="float16")
    service.close_session("s1")

    changes: list[tuple[object, str, str]] = [
        (decode, "NUMBERING_VERSION", "2"),
        (av, "ffmpeg_version_info", "9.9"),
    ]
    for module, name, value in changes:
        with monkeypatch.context() as patch:
            patch.setattr(module, name, value)
            after = cache_sampling_key(every_frame, decode.numbering_key())
            assert after != before
            assert (
                service.load_cached(name, repo, CacheScope(SCOPE.model, after), DIM, list(files)).hits == []
            )
    assert len(service.load_cached("s3", repo, CacheScope(SCOPE.model, before), DIM, list(files)).hits) == 2


# Each turns a valid entry into one that must not be used.
CORRUPTIONS: dict[str, Callable[[bytes, bytes], bytes]] = {
    "truncated": lambda data, other: data[: len(data) - 7],
    "garbage": lambda data, other: b"\x00\xff not an entry" * 10,
    "empty": lambda data, other: b"",
    "flipped payload byte": lambda data, other: data[:-5] + bytes([data[-5] ^ 0x40]) + data[-4:],
    "another file's entry": lambda data, other: other,
    "header only": lambda data, other: data[: data.index(b"\n") + 1],
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_unusable_entry_is_a_miss_with_a_log_line_and_streaming_the_file_replaces_it(
    service: SelectorService, repo: PoolRepository, caplog: pytest.LogCaptureFixture, corruption: str
) -> None:
    files = files_and_vectors(2)
    stream(service, repo, "s1", files)
    bad, good = files
    cache = EmbeddingCache(repo.store, SCOPE)
    data, other = repo.store.read(cache.key(bad)), repo.store.read(cache.key(good))
    repo.store.put(cache.key(bad), CORRUPTIONS[corruption](data, other))

    with caplog.at_level(logging.WARNING, logger=embedding_cache.__name__):
        load = service.load_cached("s2", repo, SCOPE, DIM, list(files))
    assert [e.file for e in load.hits] == [good]
    assert load.unreadable == 1
    assert any(bad.path in r.getMessage() and "unusable" in r.getMessage() for r in caplog.records)

    # The scheduler embeds the file again; its complete file replaces the entry.
    service.close_session("s2")
    stream(service, repo, "s3", {bad: files[bad]})
    load = service.load_cached("s4", repo, SCOPE, DIM, list(files))
    assert sorted(e.file for e in load.hits) == sorted(files) and load.unreadable == 0


def test_wrong_width_entry_for_the_same_key_is_unusable(
    service: SelectorService, repo: PoolRepository
) -> None:
    """A model whose id stayed the same but whose width changed must not feed old vectors."""
    files = files_and_vectors(1)
    stream(service, repo, "s1", files)
    load = service.load_cached("s2", repo, SCOPE, DIM + 1, list(files))
    assert load.hits == [] and load.unreadable == 1


def test_lookup_reads_only_listed_entries(
    service: SelectorService, repo: PoolRepository, tmp_path: Path
) -> None:
    files = files_and_vectors(4)
    stream(service, repo, "s1", files)
    counting = CountingStore(repo.store)
    misses = [file_ref(f"new{i}.mp4") for i in range(40)]
    load = EmbeddingCache(counting, SCOPE).load([*files, *misses], DIM)
    assert len(load.hits) == 4
    # One listing told the misses apart: no read of an absent entry.
    assert counting.listed == 4 and len(counting.reads) == 4

    # A pool with no cache yet, and one whose folder does not exist yet: nothing is read.
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "empty", tmp_path / "missing"):
        empty = CountingStore(LocalStore(root))
        assert EmbeddingCache(empty, SCOPE).load(misses, DIM).hits == [] and empty.reads == []


def test_small_lookup_in_a_large_cache_stops_listing_and_reads_its_keys(
    service: SelectorService, repo: PoolRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_and_vectors(12, frames=3)
    stream(service, repo, "s1", files)
    monkeypatch.setattr(embedding_cache, "KEYS_PER_LIST_REQUEST", 2)
    counting = CountingStore(repo.store)
    wanted = [*list(files)[:2], file_ref("new.mp4")]
    load = EmbeddingCache(counting, SCOPE).load(wanted, DIM)
    assert sorted(e.file for e in load.hits) == sorted(wanted[:2])
    # A budget of one "request" (2 keys) for 3 files: the listing stops, each wanted key is read.
    assert counting.listed == 3 and len(counting.reads) == 3


def test_gc_keeps_cache_entries(service: SelectorService, repo: PoolRepository) -> None:
    files = files_and_vectors(2)
    session = select(service, repo, caching_spec("s1", n_samples=2), files, dtype="float16")
    service.commit("s1", "tag1", rendered_picks(session))
    orphan = f"{DATA_PREFIX}lost-commit/entries.json"
    repo.store.put(orphan, b"[]")
    entries = cache_keys(repo.store)
    assert len(entries) == 2

    report = collect_garbage(repo.store, min_age_s=0)
    assert [o.key for o in report.deleted] == [orphan]
    assert cache_keys(repo.store) == entries
    assert len(service.load_cached("s2", repo, SCOPE, DIM, list(files)).hits) == 2


def test_cache_on_every_store(
    make_location: Callable[..., common_pb2.StoreLocation], store_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = SelectorService()
    repo = PoolRepository(open_store(make_location(store_kind)))
    files = files_and_vectors(3)
    streamed = select(service, repo, caching_spec("s1", n_samples=4), files, dtype="float16")
    assert len(cache_keys(repo.store)) == 3
    cache = EmbeddingCache(repo.store, SCOPE)
    first = next(iter(files))
    repo.store.put(cache.key(first), b"corrupt")
    changed = dataclasses.replace(list(files)[1], etag="changed")
    load = service.load_cached("s2", repo, SCOPE, DIM, [*files, changed])
    assert sorted(e.file for e in load.hits) == sorted(list(files)[1:]) and load.unreadable == 1
    service.close_session("s2")
    stream(service, repo, "s3", {first: files[first]})
    cached = from_cache(service, repo, "s4", files, n_samples=4)
    assert [p.frame_name for p in cached.picks] == [p.frame_name for p in streamed.picks]
