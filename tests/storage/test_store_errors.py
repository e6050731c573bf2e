"""Failures a person must be able to act on: wrong credentials, missing permissions, no network."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.exceptions import ClientError
from storage_support import EmulatorsApi, MakeLocation

from datapool.storage import (
    StoreAccessDenied,
    StoreAuthError,
    StoreError,
    StoreUnavailable,
    azure_location,
    describe_location,
    gcs_location,
    open_store,
    s3_location,
    verify_access,
)
from datapool.storage.azure import AzureStore
from datapool.storage.gcs import GcsStore
from datapool.storage.remote import RemoteOptions
from datapool.storage.s3 import S3Store


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _s3_with_keys(make_location: MakeLocation, key_id: str, secret: str) -> S3Store:
    location = make_location("s3", "pool/")
    location.s3.access_key.access_key_id = key_id
    location.s3.access_key.secret_access_key = secret
    store = open_store(location)
    assert isinstance(store, S3Store)
    return store


def test_s3_unknown_key_is_an_auth_error(make_location: MakeLocation) -> None:
    store = _s3_with_keys(make_location, "AKIADATAPOOLNOSUCHKEY", "wrong-secret-value")
    with pytest.raises(StoreAuthError, match=r"s3://dp-.*/pool/.*InvalidAccessKeyId") as info:
        list(store.list())
    assert "wrong-secret-value" not in str(info.value)


def test_s3_missing_permissions_are_named(make_location: MakeLocation, emulators: EmulatorsApi) -> None:
    reader = _s3_with_keys(make_location, *emulators.s3_user(["s3:GetObject", "s3:ListBucket"]))
    emulators.s3_admin().put_object(Bucket=reader.bucket, Key="pool/clip.mp4", Body=b"x")
    assert [o.key for o in reader.list()] == ["clip.mp4"]
    with pytest.raises(StoreAccessDenied, match=r"missing permission to write s3://.*/pool/new\.txt") as w:
        reader.put("new.txt", b"x")
    assert (w.value.permission, w.value.path) == ("write", f"s3://{reader.bucket}/pool/new.txt")
    with pytest.raises(StoreAccessDenied, match="missing permission to delete") as d:
        reader.delete("clip.mp4")
    assert d.value.permission == "delete"
    verify_access(reader, writable=False)
    with pytest.raises(StoreAccessDenied, match="write"):
        verify_access(reader, writable=True)

    writer = _s3_with_keys(make_location, *emulators.s3_user(["s3:PutObject"]))
    with pytest.raises(StoreAccessDenied, match="missing permission to list") as li:
        list(writer.list())
    assert li.value.permission == "list"


def test_s3_wrong_region_names_both_regions(make_location: MakeLocation) -> None:
    # moto serves every region from one endpoint and never redirects, so the answer AWS gives
    # (301 PermanentRedirect with x-amz-bucket-region) is fed to the translation directly.
    location = make_location("s3", "pool/")
    location.s3.region = "eu-west-1"
    store = open_store(location)
    assert isinstance(store, S3Store)
    response: Any = {
        "Error": {"Code": "PermanentRedirect", "Message": "use the right endpoint"},
        "ResponseMetadata": {"HTTPStatusCode": 301, "HTTPHeaders": {"x-amz-bucket-region": "us-west-2"}},
    }
    redirect = ClientError(response, "ListObjectsV2")
    message = str(store._translate(redirect, "list", ""))
    assert "us-west-2" in message and "eu-west-1" in message and store.bucket in message


def test_unreachable_stores_say_so() -> None:
    url = _closed_port_url()
    stores = [
        S3Store(
            s3_location("bucket", "p/", endpoint_url=url, access_key_id="a", secret_access_key="b").s3,
            RemoteOptions(max_attempts=2),
        ),
        GcsStore(gcs_location("bucket", "p/", endpoint_url=url).gcs, RemoteOptions(retry_timeout_s=1.0)),
        AzureStore(
            azure_location("acct", "container", "p/", endpoint_url=url, sas_token="sv=x&sig=secret").azure,
            RemoteOptions(max_attempts=1),
        ),
    ]
    for store in stores:
        with pytest.raises(StoreUnavailable, match="cannot reach") as info:
            store.read("k")
        assert store.describe() in str(info.value) and "secret" not in str(info.value)


def test_azure_read_only_sas_is_denied_writes(make_location: MakeLocation, emulators: EmulatorsApi) -> None:
    location = make_location("azure", "pool/")
    open_store(location).put("clip.mp4", b"x")
    location.azure.sas_token = emulators.azure_sas(location.azure.container, "rl")
    reader = open_store(location)
    assert [o.key for o in reader.list()] == ["clip.mp4"]
    with pytest.raises(StoreAccessDenied, match=r"missing permission to write azure://.*/pool/n\.txt") as e:
        reader.put("n.txt", b"x")
    assert e.value.permission == "write"
    verify_access(reader, writable=False)
    with pytest.raises(StoreAccessDenied, match="write"):
        verify_access(reader, writable=True)
    _assert_no_secret(e.value, location.azure.sas_token)


def test_azure_sas_without_list_is_denied_listing(
    make_location: MakeLocation, emulators: EmulatorsApi
) -> None:
    location = make_location("azure")
    location.azure.sas_token = emulators.azure_sas(location.azure.container, "rwd")
    with pytest.raises(StoreAccessDenied, match="missing permission to list") as e:
        list(open_store(location).list())
    _assert_no_secret(e.value, location.azure.sas_token)


def test_azure_expired_or_forged_sas_is_an_auth_error(
    make_location: MakeLocation, emulators: EmulatorsApi
) -> None:
    location = make_location("azure")
    location.azure.sas_token = emulators.azure_sas(location.azure.container, valid_s=-60)
    with pytest.raises(StoreAuthError, match=r"SAS token .* was rejected") as e:
        list(open_store(location).list())
    _assert_no_secret(e.value, location.azure.sas_token)
    forged = location.azure.sas_token.replace("sig=", "sig=AAAA")
    location.azure.sas_token = forged
    with pytest.raises(StoreAuthError) as e:
        open_store(location).read("x")
    _assert_no_secret(e.value, forged)


def test_gcs_bad_service_account_json_is_an_auth_error(make_location: MakeLocation) -> None:
    location = make_location("gcs")
    secret = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----SECRETBYTES"}'
    location.gcs.credentials_json = secret
    with pytest.raises(StoreAuthError, match=r"credentials_json for gs://dp-.* is not a valid") as e:
        open_store(location)
    assert "SECRETBYTES" not in str(e.value) and e.value.__cause__ is None
    location.gcs.credentials_json = "not json"
    with pytest.raises(StoreAuthError):
        open_store(location)


@pytest.mark.parametrize("kind", ["s3", "s3-role", "gcs", "azure"])
def test_secrets_stay_out_of_descriptions(make_location: MakeLocation, kind: str) -> None:
    location = make_location(kind, "pool/")
    store = open_store(location)
    secrets = [location.s3.access_key.secret_access_key, location.s3.delegated_role.external_id]
    secrets += [location.azure.sas_token, _sig(location.azure.sas_token)]
    for text in (repr(store), store.describe(), describe_location(location)):
        assert not any(s and s in text for s in secrets), text
    assert store.describe() == describe_location(location)
    with pytest.raises(StoreError) as e:
        store.read("missing")
    _assert_no_secret(e.value, *secrets)


def _sig(sas: str) -> str:
    return dict(p.split("=", 1) for p in sas.split("&") if "=" in p).get("sig", "")


def _assert_no_secret(error: BaseException, *secrets: str) -> None:
    texts = [str(error), repr(error), str(error.__cause__ or "")]
    for secret in filter(None, secrets):
        for part in {secret, _sig(secret)} - {""}:
            assert not any(part in t for t in texts), f"secret leaked into: {texts}"
