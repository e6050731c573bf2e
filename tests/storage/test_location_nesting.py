"""prefix_within: the same objects under two locations are found whatever the spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from datapool.storage import azure_location, gcs_location, local_location, s3_location
from datapool.storage.nesting import prefix_within
from datapool.v1 import common_pb2


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        (s3_location("bkt", "in/"), s3_location("bkt", "in/"), ""),
        (s3_location("bkt", "in/"), s3_location("bkt", "in/pool/"), "pool/"),
        (s3_location("bkt", ""), s3_location("bkt", "pool/"), "pool/"),
        (s3_location("bkt", "in/"), s3_location("bkt", "input/"), None),
        (s3_location("bkt", "in/"), s3_location("other", "in/pool/"), None),
        (
            s3_location("bkt", "in/"),
            s3_location("bkt", "in/pool/", endpoint_url="https://s3.eu-west-1.amazonaws.com/"),
            "pool/",
        ),
        (
            s3_location("bkt", "in/", endpoint_url="http://minio:9000"),
            s3_location("bkt", "in/pool/", endpoint_url="http://MINIO:9000/"),
            "pool/",
        ),
        (
            s3_location("bkt", "in/", endpoint_url="http://a"),
            s3_location("bkt", "in/p/", endpoint_url="http://b"),
            None,
        ),
        (gcs_location("bkt", "in/"), gcs_location("bkt", "in/pool/"), "pool/"),
        (azure_location("acct", "box", "in/"), azure_location("acct", "box", "in/"), ""),
        (azure_location("acct", "box", "in/"), azure_location("acct", "other", "in/pool/"), None),
        (s3_location("bkt", ""), gcs_location("bkt", "pool/"), None),
    ],
)
def test_object_store_locations_compare_by_endpoint_bucket_and_prefix(
    outer: common_pb2.StoreLocation, inner: common_pb2.StoreLocation, expected: str | None
) -> None:
    assert prefix_within(outer, inner) == expected


def test_a_local_path_through_dot_dot_is_resolved(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    assert prefix_within(local_location(str(inp)), local_location(f"{inp}/sub/../pool")) == "pool/"
    assert prefix_within(local_location(f"{inp}/"), local_location(str(inp))) == ""
    assert prefix_within(local_location(str(inp)), local_location(f"{inp}/../pool")) is None


def test_a_symlink_into_the_input_is_resolved(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    (inp / "pool").mkdir(parents=True)
    (tmp_path / "elsewhere").symlink_to(inp / "pool")
    (tmp_path / "in-link").symlink_to(inp)
    assert prefix_within(local_location(str(inp)), local_location(str(tmp_path / "elsewhere"))) == "pool/"
    assert prefix_within(local_location(str(tmp_path / "in-link")), local_location(str(inp))) == ""
