"""The cloud set_*_config methods: path parsing and the location message they send."""

from __future__ import annotations

from typing import Any

import pytest

from datapool import ApiWorkflowClient, DatasourcePurpose
from datapool.v1 import common_pb2, scheduler_pb2


class Recorder:
    def __init__(self) -> None:
        self.requests: list[scheduler_pb2.SetDatasourceRequest] = []

    def SetDatasource(self, request: Any, **_: Any) -> scheduler_pb2.Datasource:
        self.requests.append(request)
        return scheduler_pb2.Datasource()


@pytest.fixture
def client() -> Any:
    c = ApiWorkflowClient(address="127.0.0.1:1")
    c._dataset_id = "ds"
    c._stub = Recorder()  # type: ignore[assignment]
    yield c
    c.close()


def sent(client: Any) -> scheduler_pb2.SetDatasourceRequest:
    request: scheduler_pb2.SetDatasourceRequest = client._stub.requests[-1]
    return request


def test_s3_access_key(client: Any) -> None:
    client.set_s3_config(
        resource_path="s3://my-bucket/input/videos",
        region="eu-central-1",
        access_key="AKIA",
        secret_access_key="secret",
        purpose=DatasourcePurpose.INPUT,
        endpoint_url="http://127.0.0.1:9000",
    )
    request = sent(client)
    s3 = request.location.s3
    assert (s3.bucket, s3.prefix, s3.region, s3.endpoint_url) == (
        "my-bucket",
        "input/videos/",
        "eu-central-1",
        "http://127.0.0.1:9000",
    )
    assert s3.access_key == common_pb2.S3AccessKey(access_key_id="AKIA", secret_access_key="secret")
    assert request.purpose == scheduler_pb2.INPUT and not request.bypass_verify


def test_s3_delegated_role_at_bucket_root(client: Any) -> None:
    client.set_s3_delegated_access_config(
        resource_path="s3://pool-bucket/",
        region="us-east-1",
        role_arn="arn:aws:iam::123456789012:role/datapool",
        external_id="ext-123",
        purpose=DatasourcePurpose.LIGHTLY,
        bypass_verify=True,
    )
    request = sent(client)
    assert request.location.s3.prefix == ""
    assert request.location.s3.delegated_role.role_arn.endswith("role/datapool")
    assert request.location.s3.delegated_role.external_id == "ext-123"
    assert request.purpose == scheduler_pb2.LIGHTLY and request.bypass_verify


def test_gcs_anonymous_and_with_credentials(client: Any) -> None:
    client.set_gcs_config("gs://bkt/a/b/", project_id="p", credentials=None, purpose="INPUT")
    assert sent(client).location.gcs == common_pb2.GcsLocation(bucket="bkt", prefix="a/b/", project_id="p")
    client.set_gcs_config("gs://bkt", "p", '{"type": "service_account"}', DatasourcePurpose.LIGHTLY)
    assert sent(client).location.gcs.credentials_json == '{"type": "service_account"}'


def test_azure_container_and_prefix(client: Any) -> None:
    client.set_azure_config(
        container_name="videos/cam1/", account_name="acct", sas_token="sv=1&sig=x", purpose="LIGHTLY"
    )
    az = sent(client).location.azure
    assert (az.container, az.prefix, az.account_name, az.sas_token) == (
        "videos",
        "cam1/",
        "acct",
        "sv=1&sig=x",
    )
    client.set_azure_config("videos", "acct", "t", "INPUT")
    assert sent(client).location.azure.prefix == ""


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c: c.set_s3_config("my-bucket/x", "r", "a", "s"), "must start with 's3://'"),
        (lambda c: c.set_s3_config("gs://b/x", "r", "a", "s"), "must start with 's3://'"),
        (lambda c: c.set_s3_delegated_access_config("s3:///x", "r", "arn", "e"), "not a valid bucket name"),
        (lambda c: c.set_gcs_config("s3://b/", "p", None), "must start with 'gs://'"),
        (lambda c: c.set_azure_config("https://acct.blob.core.windows.net/c", "acct", "t"), "not a URL"),
        (lambda c: c.set_azure_config("/", "acct", "t"), "not a valid container name"),
    ],
)
def test_bad_paths_raise_value_error_before_any_call(client: Any, call: Any, needle: str) -> None:
    with pytest.raises(ValueError, match=r"resource_path|container_name") as err:
        call(client)
    assert needle in str(err.value)
    assert client._stub.requests == []
