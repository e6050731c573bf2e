"""Store requests are timed once a service installs an observer, and only then."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from datapool.pool.gc import discard_commit
from datapool.pool.layout import DATA_PREFIX
from datapool.pool.repository import PoolRepository
from datapool.storage import LocalStore, ObjectNotFound, local_location, open_store
from datapool.storage.timing import TimedStore, set_request_observer

Seen = list[tuple[str, str, bool]]


@pytest.fixture
def seen() -> Iterator[Seen]:
    """(store kind, operation, ok) of each request, while the observer is installed."""
    requests: Seen = []

    def observe(kind: str, operation: str, seconds: float, ok: bool) -> None:
        assert seconds >= 0
        requests.append((kind, operation, ok))

    set_request_observer(observe)
    try:
        yield requests
    finally:
        set_request_observer(None)


def test_without_an_observer_open_store_hands_out_the_adapter_itself(tmp_path: Path) -> None:
    assert type(open_store(local_location(str(tmp_path)))) is LocalStore


def test_each_request_is_reported_with_its_store_kind_operation_and_outcome(
    seen: Seen, tmp_path: Path
) -> None:
    store = open_store(local_location(str(tmp_path)))
    assert isinstance(store, TimedStore)
    store.put("a/1.bin", b"one")
    assert store.put_if_absent("a/1.bin", b"again") is False
    assert store.read("a/1.bin") == b"one"
    assert store.read_range("a/1.bin", 1) == b"ne"
    assert store.stat("a/2.bin") is None
    with store.local_path("a/1.bin") as path:
        assert path.read_bytes() == b"one"
    assert [o.key for o in store.list("a/")] == ["a/1.bin"]
    store.delete("a/1.bin")
    with pytest.raises(ObjectNotFound):
        store.read("a/1.bin")
    assert seen == [
        ("local", "put", True),
        ("local", "put_if_absent", True),
        ("local", "read", True),
        ("local", "read_range", True),
        ("local", "stat", True),
        ("local", "local_path", True),
        ("local", "list", True),
        ("local", "delete", True),
        ("local", "read", False),
    ]


def test_a_listing_the_caller_stops_early_is_reported_once_as_ok(seen: Seen, tmp_path: Path) -> None:
    store = open_store(local_location(str(tmp_path)))
    for i in range(3):
        store.put(f"k{i}", b"")
    seen.clear()
    listing = store.list()
    assert isinstance(listing, Generator)
    assert next(listing).key == "k0"
    listing.close()
    assert seen == [("local", "list", True)]


def test_a_failed_commit_through_a_timed_store_still_removes_its_empty_data_folder(
    seen: Seen, tmp_path: Path
) -> None:
    repo = PoolRepository(open_store(local_location(str(tmp_path))))
    repo.store.put(f"{DATA_PREFIX}c0ffee/embeddings.npy", b"x")
    assert discard_commit(repo, "c0ffee", 1) == 1
    assert not (tmp_path / DATA_PREFIX / "c0ffee").exists()
