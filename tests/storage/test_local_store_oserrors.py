"""LocalStore turns OS errors into storage errors of their kind, naming the path: a full disk
is RESOURCE_EXHAUSTED "disk full", a read-only or forbidden one PERMISSION_DENIED, and a
failed write leaves no temporary file behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import grpc
import pytest
from small_disk import fill, tmpfs

from datapool.storage import InvalidObjectKey, LocalStore, StoreAccessDenied, StoreFull


def test_a_write_to_a_full_disk_is_resource_exhausted_and_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        store = LocalStore(disk / "pool")
        store.put("small.txt", b"fits")
        fill(disk)
        with pytest.raises(StoreFull) as caught:
            store.put("frames/run/big.png", os.urandom(64 * 1024))
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"disk full writing {disk / 'pool' / 'frames/run/big.png'}" in str(caught.value)
        assert "permission" not in str(caught.value).lower()
        with pytest.raises(StoreFull):
            store.put_if_absent("manifest.json", os.urandom(64 * 1024))
        assert sorted(p.name for p in (disk / "pool").rglob("*") if p.is_file()) == ["small.txt"]


def test_a_write_to_a_read_only_disk_is_permission_denied_naming_the_path(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", read_only=True) as disk:
        store = LocalStore(disk)
        with pytest.raises(StoreAccessDenied) as caught:
            store.put("a.png", b"x")
        assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert f"missing permission to write {disk / 'a.png'}" in str(caught.value)
        assert caught.value.permission == "write"


def test_a_permission_error_reading_is_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads any file whatever its mode, so the refusal is injected at the OS call.
    store = LocalStore(tmp_path)
    store.put("a.mp4", b"x")

    def refuse(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(
        StoreAccessDenied, match=r"missing permission to read .*a\.mp4 .*Permission denied"
    ) as caught:
        store.read("a.mp4")
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_key_too_long_for_the_filesystem_is_invalid_argument(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(InvalidObjectKey, match=r"the name is too long for the filesystem") as caught:
        store.put("frames/" + "x" * 300 + ".png", b"x")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(tmp_path.rglob("*datapool-tmp*")) == []
