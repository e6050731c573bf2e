"""Endpoints from the environment for locations without one (datapool/storage/endpoints.py)."""

from __future__ import annotations

import pytest

from datapool.storage.endpoints import azure_account_url, gcs_emulator, s3_endpoint
from datapool.storage.locations import s3_location
from datapool.storage.s3 import S3Store


def test_s3_takes_the_service_variable_then_the_global_one_and_the_location_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert s3_endpoint("") == ""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://global:1")
    assert s3_endpoint("") == "http://global:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3:2")
    assert s3_endpoint("") == "http://s3:2"
    assert s3_endpoint("http://own:3") == "http://own:3"
    store = S3Store(s3_location("bucket", region="us-east-1", access_key_id="a", secret_access_key="s").s3)
    assert store.endpoint_url == "http://s3:2"
    # Emulators need path-style addressing, which an endpoint from the environment gets too.
    assert store._client.meta.config.s3 == {"addressing_style": "path"}  # type: ignore[attr-defined]


def test_gcs_uses_the_emulator_variable_only_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    assert gcs_emulator("") == ""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443")
    assert gcs_emulator("") == "http://127.0.0.1:4443"
    assert gcs_emulator("http://own") == ""


def test_azure_fills_the_account_into_the_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAPOOL_AZURE_BLOB_ENDPOINT", raising=False)
    assert azure_account_url("", "acct") == "https://acct.blob.core.windows.net"
    monkeypatch.setenv("DATAPOOL_AZURE_BLOB_ENDPOINT", "http://127.0.0.1:10000/{account}")
    assert azure_account_url("", "acct") == "http://127.0.0.1:10000/acct"
    assert azure_account_url("http://own/acct", "acct") == "http://own/acct"
