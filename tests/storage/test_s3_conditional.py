"""S3's answers to concurrent conditional writes that moto does not produce on its own.

AWS answers 409 ConditionalRequestConflict while another conditional write of the same key is
in flight, and asks the client to retry; botocore's Stubber plays those answers to the real client.
"""

from __future__ import annotations

from botocore.stub import Stubber

from datapool.storage.locations import s3_location
from datapool.storage.s3 import S3Store


def _store() -> S3Store:
    return S3Store(
        s3_location("bucket", "pool/", region="us-east-1", access_key_id="a", secret_access_key="b").s3
    )


def _conflict(stub: Stubber) -> None:
    stub.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409)


def test_conflict_then_precondition_failed_means_someone_else_won() -> None:
    store = _store()
    with Stubber(store._client) as stub:
        _conflict(stub)
        stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
        assert store.put_if_absent("manifests/00000003.json", b"x") is False
        stub.assert_no_pending_responses()


def test_conflict_then_success_means_we_won() -> None:
    store = _store()
    with Stubber(store._client) as stub:
        _conflict(stub)
        _conflict(stub)
        stub.add_response(
            "put_object",
            {"ETag": '"e"'},
            {"Bucket": "bucket", "Key": "pool/manifests/00000003.json", "Body": b"x", "IfNoneMatch": "*"},
        )
        assert store.put_if_absent("manifests/00000003.json", b"x") is True
        stub.assert_no_pending_responses()
