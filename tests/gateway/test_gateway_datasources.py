"""Lightly's datasource bodies (as lightly 1.5.26 sends them) as datapool locations."""

from __future__ import annotations

from typing import Any

import pytest

from datapool.v1 import scheduler_pb2
from services.gateway.datasources import location, purpose
from services.gateway.errors import GatewayError

THUMBS = ".lightly/thumbnails/[filename]_thumb.[extension]"


def test_each_cloud_body_becomes_a_location_without_an_endpoint() -> None:
    s3 = location(
        {
            "type": "S3",
            "fullPath": "s3://bucket/input/",
            "thumbSuffix": THUMBS,
            "s3Region": "eu-central-1",
            "s3AccessKeyId": "AKIA",
            "s3SecretAccessKey": "secret",
            "purpose": "INPUT",
        }
    ).s3
    assert (s3.bucket, s3.prefix, s3.region, s3.endpoint_url) == ("bucket", "input/", "eu-central-1", "")
    assert (s3.access_key.access_key_id, s3.access_key.secret_access_key) == ("AKIA", "secret")
    role = location(
        {
            "type": "S3DelegatedAccess",
            "fullPath": "s3://bucket2/x",
            "s3Region": "us-east-1",
            "s3ARN": "arn",
            "s3ExternalId": "e",
        }
    ).s3
    assert (role.bucket, role.prefix, role.delegated_role.role_arn, role.delegated_role.external_id) == (
        "bucket2",
        "x/",
        "arn",
        "e",
    )
    gcs = location(
        {"type": "GCS", "fullPath": "gs://gbucket/l/", "gcsProjectId": "p", "gcsCredentials": "{}"}
    ).gcs
    assert (gcs.bucket, gcs.prefix, gcs.project_id, gcs.credentials_json) == ("gbucket", "l/", "p", "{}")
    az = location(
        {"type": "AZURE", "fullPath": "container/in/", "accountName": "acct", "accountKey": "sv=1"}
    ).azure
    assert (az.account_name, az.container, az.prefix, az.sas_token, az.endpoint_url) == (
        "acct",
        "container",
        "in/",
        "sv=1",
        "",
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"type": "OBS", "fullPath": "obs://b/"}, ["not supported by datapool", "'OBS'"]),
        (
            {"type": "S3", "fullPath": "s3://bucket/", "s3PartialRead": True},
            ["not supported", "'s3PartialRead'"],
        ),
        (
            {
                "type": "S3",
                "fullPath": "gs://gbucket/",
                "s3Region": "r",
                "s3AccessKeyId": "a",
                "s3SecretAccessKey": "s",
            },
            ["fullPath", "s3://"],
        ),
        (
            {"type": "GCS", "fullPath": "gs://gbucket/", "gcsProjectId": 7, "gcsCredentials": "{}"},
            ["gcsProjectId"],
        ),
        ({"type": "LOCAL", "fullPath": "relative/dir"}, ["fullPath", "absolute"]),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(body: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(GatewayError) as err:
        location(body)
    assert err.value.status == 400
    for word in words:
        assert word in err.value.message


def test_each_purpose_maps_and_lightlys_default_is_input_output() -> None:
    assert purpose({"purpose": "INPUT"}) == scheduler_pb2.INPUT
    assert purpose({"purpose": "LIGHTLY"}) == scheduler_pb2.LIGHTLY
    assert purpose({"purpose": "INPUT_OUTPUT"}) == scheduler_pb2.INPUT_OUTPUT
    assert purpose({}) == scheduler_pb2.INPUT_OUTPUT
    with pytest.raises(GatewayError, match=r"purpose: 'OUTPUT' is not one of INPUT, LIGHTLY, INPUT_OUTPUT"):
        purpose({"purpose": "OUTPUT"})
