"""A pool kept inside the INPUT datasource is never listed as input, on any kind of store."""

from __future__ import annotations

import pytest

from datapool.storage import azure_location, gcs_location, local_location, s3_location
from datapool.v1 import common_pb2
from services.scheduler.pipeline import nested_pool_prefix


@pytest.mark.parametrize(
    ("inp", "pool", "expected"),
    [
        (local_location("/data/in"), local_location("/data/in/lightly"), "lightly/"),
        (local_location("/data/in"), local_location("/data/lightly"), None),
        (local_location("/data/in"), local_location("/data/in"), None),
        (local_location("/data/in"), local_location("/data/in/sub/../pool"), "pool/"),
        (local_location("/data/in"), local_location("/data/in/../pool"), None),
        (s3_location("bkt", "videos/"), s3_location("bkt", "videos/lightly/"), "lightly/"),
        (s3_location("bkt", ""), s3_location("bkt", "lightly/"), "lightly/"),
        (s3_location("bkt", "videos/"), s3_location("other-bkt", "videos/lightly/"), None),
        (s3_location("bkt", "videos/"), s3_location("bkt", "lightly/"), None),
        (
            s3_location("bkt", "v/", endpoint_url="http://a"),
            s3_location("bkt", "v/p/", endpoint_url="http://b"),
            None,
        ),
        (gcs_location("bkt", "in/"), gcs_location("bkt", "in/pool/"), "pool/"),
        (azure_location("acct", "box", "in/"), azure_location("acct", "box", "in/pool/"), "pool/"),
        (azure_location("acct", "box", "in/"), azure_location("other", "box", "in/pool/"), None),
        (s3_location("bkt", ""), gcs_location("bkt", "pool/"), None),
    ],
)
def test_nested_pool_prefix(
    inp: common_pb2.StoreLocation, pool: common_pb2.StoreLocation, expected: str | None
) -> None:
    assert nested_pool_prefix(inp, pool) == expected
