"""verify_access on every backend, and building and parsing locations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_support import MakeLocation

from datapool.storage import (
    InvalidLocation,
    LocalStore,
    ObjectInfo,
    StoreError,
    StoreNotFoundError,
    azure_location,
    describe_location,
    gcs_location,
    open_store,
    parse_bucket_path,
    parse_container_path,
    s3_location,
    verify_access,
)
from datapool.storage.locations import local_location, pool_key


def test_verify_access_leaves_nothing_behind(make_location: MakeLocation, store_kind: str) -> None:
    store = open_store(make_location(store_kind, "pool/"))
    verify_access(store, writable=True)
    store.put("clip.mp4", b"x")
    verify_access(store, writable=False)
    verify_access(store, writable=True)
    assert [o.key for o in store.list()] == ["clip.mp4"]


def test_verify_access_reports_a_missing_bucket(make_location: MakeLocation) -> None:
    location = make_location("gcs")
    location.gcs.bucket = "no-such-bucket-dp"
    with pytest.raises(StoreNotFoundError, match="no-such-bucket-dp"):
        verify_access(open_store(location), writable=False)


@pytest.mark.parametrize(
    ("path", "scheme", "expected"),
    [
        ("s3://bucket/prefix", "s3", ("bucket", "prefix/")),
        ("s3://bucket/a/b/", "s3", ("bucket", "a/b/")),
        ("s3://bucket", "s3", ("bucket", "")),
        ("gs://my_bucket.x/", "gs", ("my_bucket.x", "")),
    ],
)
def test_parse_bucket_path(path: str, scheme: str, expected: tuple[str, str]) -> None:
    assert parse_bucket_path(path, scheme) == expected


@pytest.mark.parametrize(
    ("path", "scheme", "bad"),
    [
        ("gs://bucket/p", "s3", "must start with 's3://'"),
        ("s3:///p", "s3", "bucket in"),
        ("s3://Bucket/p", "s3", "'Bucket' is not a valid bucket name"),
        ("s3://bucket/a/../b", "s3", "prefix in"),
    ],
)
def test_parse_bucket_path_names_the_bad_part(path: str, scheme: str, bad: str) -> None:
    with pytest.raises(InvalidLocation, match=bad):
        parse_bucket_path(path, scheme)
    with pytest.raises(ValueError):
        parse_bucket_path(path, scheme)


def test_parse_container_path() -> None:
    assert parse_container_path("videos/raw/2024") == ("videos", "raw/2024/")
    assert parse_container_path("videos") == ("videos", "")
    with pytest.raises(StoreError, match="'Vid_eos' is not a valid container name"):
        parse_container_path("Vid_eos/x")


def test_location_helpers_and_descriptions() -> None:
    s3 = s3_location("bucket", "p", region="eu-west-1", access_key_id="AKIA", secret_access_key="s3cret")
    assert s3.s3.prefix == "p/" and s3.s3.WhichOneof("auth") == "access_key"
    assert describe_location(s3) == "s3://bucket/p/"
    role = s3_location("bucket", role_arn="arn:aws:iam::1:role/r", external_id="ext")
    assert role.s3.WhichOneof("auth") == "delegated_role" and describe_location(role) == "s3://bucket/"
    with pytest.raises(InvalidLocation, match="not both"):
        s3_location("bucket", access_key_id="a", role_arn="arn:aws:iam::1:role/r")
    assert describe_location(gcs_location("bkt", "/x/y")) == "gs://bkt/x/y/"
    az = azure_location("acct", "container", "a", sas_token="sv=1&sig=zzz")
    assert describe_location(az) == "azure://acct/container/a/"
    assert "zzz" not in repr(open_store(az))


class _ProbeVanishes(LocalStore):
    """Lists another scheduler's access-check probe that is deleted before anyone reads it."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        yield ObjectInfo(".datapool/access-check-of-another-scheduler", 21, "gone")
        yield from super().list(prefix)


def test_an_object_deleted_between_listing_and_reading_is_not_an_access_problem(tmp_path: Path) -> None:
    store = _ProbeVanishes(tmp_path)
    store.put("clip.mp4", b"x")
    verify_access(store, writable=False)
    verify_access(store, writable=True)
    assert [o.key for o in LocalStore(tmp_path).list()] == ["clip.mp4"]


def test_a_pool_key_names_the_place_and_not_the_credentials() -> None:
    s3 = s3_location("bucket", "p", access_key_id="AKIA", secret_access_key="s3cret")
    rotated = s3_location("bucket", "p", access_key_id="AKIB", secret_access_key="other")
    assert pool_key(s3) == pool_key(rotated) == pool_key(s3_location("bucket", "p"))
    assert pool_key(s3) == pool_key(s3_location("bucket", "p", role_arn="arn:aws:iam::1:role/r"))
    assert pool_key(s3) != pool_key(s3_location("bucket", "q"))
    assert pool_key(s3) != pool_key(s3_location("bucket", "p", endpoint_url="http://127.0.0.1:9000"))
    gcs = gcs_location("bkt", "x", credentials_json='{"private_key": "k1"}')
    assert pool_key(gcs) == pool_key(gcs_location("bkt", "x", credentials_json='{"private_key": "k2"}'))
    az = azure_location("acct", "cont", "a", sas_token="sv=1&sig=zzz")
    assert pool_key(az) == pool_key(azure_location("acct", "cont", "a", sas_token="sv=2&sig=yyy"))
    assert pool_key(az) != pool_key(azure_location("acct", "cont2", "a"))
    assert pool_key(local_location("/data/pool")) != pool_key(local_location("/data/pool2"))
    # The location it was given keeps its credentials.
    assert s3.s3.access_key.secret_access_key == "s3cret"
