"""One contract, four backends: local folders, S3 (moto), GCS (fake-gcs-server), Azure (Azurite)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from storage_support import EmulatorsApi, MakeLocation, with_bucket, with_prefix

from datapool.storage import ObjectNotFound, Store, StoreError, StoreNotFoundError, open_store
from datapool.storage.remote import RemoteOptions

KEYS = ["b.mp4", "a/x.mp4", "a.txt", "a/b/c.mp4", "ü name.mp4", "c d/e f.mp4", "a/ä/z.bin"]


@pytest.fixture
def store(make_location: MakeLocation, store_kind: str) -> Store:
    return open_store(make_location(store_kind, "pool/"))


def test_list_is_in_key_order_and_limited_to_prefixes(make_location: MakeLocation, store_kind: str) -> None:
    location = make_location(store_kind, "pool/")
    store = open_store(location)
    # Objects beside the store's prefix must never show up in it.
    outside = open_store(with_prefix(location, ""))
    outside.put("pool-sibling.txt", b"x")
    open_store(with_prefix(location, "pool2/")).put("other.txt", b"x")
    for key in KEYS:
        store.put(key, key.encode())
    listed = list(store.list())
    assert [o.key for o in listed] == sorted(KEYS)
    assert all(o.size == len(o.key.encode()) and o.etag for o in listed)
    assert [o.key for o in store.list("a/")] == ["a/b/c.mp4", "a/x.mp4", "a/ä/z.bin"]
    assert [o.key for o in store.list("a")] == ["a.txt", "a/b/c.mp4", "a/x.mp4", "a/ä/z.bin"]
    assert list(store.list("nothing/")) == []
    assert "pool/b.mp4" in [o.key for o in outside.list()]


def test_listing_pages_through_many_objects(make_location: MakeLocation, store_kind: str) -> None:
    location = make_location(store_kind, "pool/")
    store = open_store(location, RemoteOptions(page_size=4))
    keys = [f"{'d' if i % 3 else 'e'}/{i:03d}.bin" for i in range(25)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put(k, b"v"), keys))
    assert [o.key for o in store.list()] == sorted(keys)
    assert [o.key for o in store.list("e/")] == sorted(k for k in keys if k.startswith("e/"))
    # Streamed: the first object arrives without reading the whole listing.
    first = next(iter(store.list()))
    assert first.key == sorted(keys)[0]


def test_read_whole_and_ranges(store: Store) -> None:
    store.put("r/data.bin", b"0123456789")
    assert store.read("r/data.bin") == b"0123456789"
    assert store.read_range("r/data.bin", 0, 3) == b"012"
    assert store.read_range("r/data.bin", 7) == b"789"
    assert store.read_range("r/data.bin", 8, 100) == b"89"
    assert store.read_range("r/data.bin", 4, 4) == b""
    assert store.read_range("r/data.bin", 10) == b""
    assert store.read_range("r/data.bin", 50, 60) == b""
    with pytest.raises(ValueError, match="invalid byte range"):
        store.read_range("r/data.bin", 5, 2)
    with pytest.raises(ObjectNotFound, match=r"missing\.bin"):
        store.read_range("missing.bin", 0, 2)
    with pytest.raises(ObjectNotFound, match=r"missing\.bin"):
        store.read("missing.bin")
    assert store.stat("missing.bin") is None


def test_put_if_absent_creates_once(store: Store) -> None:
    assert store.put_if_absent("manifests/00000001.json", b"first")
    assert not store.put_if_absent("manifests/00000001.json", b"second")
    assert store.read("manifests/00000001.json") == b"first"


def test_concurrent_put_if_absent_has_exactly_one_winner(store: Store) -> None:
    barrier = threading.Barrier(6)

    def create(i: int) -> bool:
        barrier.wait()
        return store.put_if_absent("manifests/00000002.json", f"writer {i}".encode())

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(create, range(6)))
    assert results.count(True) == 1
    assert store.read("manifests/00000002.json") == f"writer {results.index(True)}".encode()


def test_put_overwrites_and_changes_the_etag(store: Store) -> None:
    store.put("f.txt", b"old")
    before = store.stat("f.txt")
    store.put("f.txt", b"newer")
    after = store.stat("f.txt")
    assert before is not None and after is not None
    assert (after.size, store.read("f.txt")) == (5, b"newer")
    assert after.etag != before.etag
    assert [o.etag for o in store.list("f.txt")] == [after.etag]


def test_delete_is_idempotent(store: Store) -> None:
    store.put("gone.txt", b"x")
    store.delete("gone.txt")
    store.delete("gone.txt")
    assert store.stat("gone.txt") is None
    assert list(store.list()) == []


def test_large_object_round_trips(store: Store) -> None:
    data = os.urandom(20 << 20)
    store.put("big/video.mp4", data)
    info = store.stat("big/video.mp4")
    assert info is not None and info.size == len(data)
    assert store.read_range("big/video.mp4", len(data) - 5) == data[-5:]
    assert store.read("big/video.mp4") == data
    with store.local_path("big/video.mp4") as path:
        assert path.suffix == ".mp4"
        assert path.stat().st_size == len(data)


def test_local_path_holds_the_bytes(store: Store) -> None:
    store.put("clips/a b.mp4", b"frames")
    with store.local_path("clips/a b.mp4") as path:
        assert path.read_bytes() == b"frames"
    with pytest.raises(ObjectNotFound), store.local_path("clips/missing.mp4"):
        pass


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a"])
def test_invalid_keys_are_refused(store: Store, key: str) -> None:
    with pytest.raises(StoreError, match="invalid object key"):
        store.put(key, b"x")


def test_missing_bucket_is_named(
    make_location: MakeLocation, store_kind: str, emulators: EmulatorsApi
) -> None:
    location = with_bucket(make_location(store_kind, "pool/"), "no-such-bucket-dp")
    if store_kind == "azure":  # a container SAS is signed for its container's name
        location.azure.sas_token = emulators.azure_sas("no-such-bucket-dp")
    store = open_store(location)
    with pytest.raises(StoreNotFoundError, match="no-such-bucket-dp"):
        list(store.list())
    if store_kind == "local":
        return  # a local pool folder is created by its first write; reads of it just find nothing
    for op in (lambda: store.read("k"), lambda: store.stat("k"), lambda: store.put("k", b"x")):
        with pytest.raises(StoreNotFoundError, match="no-such-bucket-dp"):
            op()


def test_listing_and_stat_carry_the_write_time(store: Store) -> None:
    import time

    before = time.time()
    store.put("t.bin", b"x")
    listed = [o for o in store.list() if o.key == "t.bin"]
    stat = store.stat("t.bin")
    assert stat is not None and len(listed) == 1
    for info in (listed[0], stat):
        assert info.modified_unix is not None
        # Emulators and filesystems stamp whole seconds at worst; allow clock skew of a minute.
        assert before - 60 <= info.modified_unix <= time.time() + 60
