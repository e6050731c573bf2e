"""S3 through a delegated role: assumed with the process's own credentials, refreshed before expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from storage_support import EmulatorsApi, MakeLocation

from datapool.storage import StoreAccessDenied, StoreAuthError, open_store, verify_access
from datapool.storage.s3 import S3Store


def _role_store(make_location: MakeLocation) -> S3Store:
    store = open_store(make_location("s3-role", "pool/"))
    assert isinstance(store, S3Store) and store.role_credentials is not None
    return store


def test_role_store_keeps_the_contract(make_location: MakeLocation) -> None:
    store = _role_store(make_location)
    assert store.put_if_absent("manifests/00000001.json", b"a")
    assert not store.put_if_absent("manifests/00000001.json", b"b")
    store.put("clip one.mp4", b"0123456789")
    assert [o.key for o in store.list()] == ["clip one.mp4", "manifests/00000001.json"]
    assert store.read_range("clip one.mp4", 2, 5) == b"234"
    verify_access(store, writable=True)


def test_process_credentials_alone_cannot_reach_the_bucket(
    make_location: MakeLocation, emulators: EmulatorsApi
) -> None:
    # The chain's user may only call sts:AssumeRole, so a working store proves the role is used.
    location = make_location("s3-role", "pool/")
    env = emulators.emulator_env()
    direct = open_store(location)
    direct.put("x", b"1")
    location.s3.access_key.access_key_id = env["AWS_ACCESS_KEY_ID"]
    location.s3.access_key.secret_access_key = env["AWS_SECRET_ACCESS_KEY"]
    with pytest.raises(StoreAccessDenied, match="missing permission to list"):
        list(open_store(location).list())


def test_credentials_are_refreshed_before_they_expire(make_location: MakeLocation) -> None:
    store = _role_store(make_location)
    # Any: the test reaches into botocore's private expiry, which its stubs do not declare.
    credentials: Any = store.role_credentials
    assert credentials is not None
    store.put("a", b"1")
    first = credentials.get_frozen_credentials()
    expiry = credentials._expiry_time
    assert expiry is not None and expiry - datetime.now(UTC) > timedelta(minutes=30)
    # Real STS will not issue credentials shorter than 15 minutes, so move this expiry into
    # botocore's mandatory-refresh window instead of waiting for it.
    credentials._expiry_time = datetime.now(UTC) + timedelta(minutes=2)
    assert credentials.refresh_needed()
    assert store.read("a") == b"1"
    second = credentials.get_frozen_credentials()
    assert second.access_key != first.access_key and second.token != first.token
    assert not credentials.refresh_needed()


def test_a_refused_assume_role_is_an_auth_error(
    make_location: MakeLocation, emulators: EmulatorsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = make_location("s3-role", "pool/")
    key_id, secret = emulators.s3_user(["s3:*"])  # may use S3, may not assume roles
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with pytest.raises(StoreAuthError, match=r"cannot assume role arn:aws:iam::\d+:role/.* for s3://") as e:
        list(open_store(location).list())
    assert secret not in str(e.value)
    assert location.s3.delegated_role.external_id not in str(e.value)


def test_no_process_credentials_is_an_auth_error(
    make_location: MakeLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = make_location("s3-role", "pool/")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreAuthError, match="no AWS credentials"):
        list(open_store(location).list())
