"""LocalStore: key-ordered listing, atomic create-if-absent, no half-written objects."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from datapool.storage import LocalStore, ObjectNotFound, StoreError


def test_listing_is_in_key_order_with_prefix(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ["b.mp4", "a/x.mp4", "a.txt", "a/b/c.mp4", "ü name.mp4", "c d/e.mp4"]:
        store.put(key, key.encode())
    keys = [o.key for o in store.list()]
    assert keys == sorted(keys)
    assert set(keys) == {"b.mp4", "a/x.mp4", "a.txt", "a/b/c.mp4", "ü name.mp4", "c d/e.mp4"}
    assert [o.key for o in store.list("a/")] == ["a/b/c.mp4", "a/x.mp4"]
    info = store.stat("a.txt")
    assert info is not None and info.size == len(b"a.txt") and info.etag
    assert store.stat("missing") is None


def test_put_if_absent_is_exclusive(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    results: list[bool] = []

    def create(i: int) -> None:
        results.append(store.put_if_absent("m/0001.json", f"writer {i}".encode()))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert store.read("m/0001.json").startswith(b"writer ")
    # No temporary file is left behind or listed.
    assert [o.key for o in store.list()] == ["m/0001.json"]
    assert len(list((tmp_path / "m").iterdir())) == 1


def test_replacing_a_file_changes_its_etag(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("v.mp4", b"one")
    first = store.stat("v.mp4")
    store.put("v.mp4", b"two!")
    second = store.stat("v.mp4")
    assert first is not None and second is not None and first.etag != second.etag


def test_errors_name_the_key_and_the_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(ObjectNotFound, match="'nope' not found in local folder"):
        store.read("nope")
    with pytest.raises(StoreError, match=r"invalid object key '\.\./x'"):
        store.put("../x", b"")
    with pytest.raises(StoreError, match="does not exist"):
        list(LocalStore(tmp_path / "absent").list())
    store.delete("never-there")
