"""Lightly's `PUT /v1/datasets/{id}/datasource` body as a datapool StoreLocation and purpose.

The body has no endpoint: the services find emulators and S3-compatible stores through the SDKs'
standard variables (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST) and
DATAPOOL_AZURE_BLOB_ENDPOINT (datapool/storage/endpoints.py).
"""

from __future__ import annotations

from typing import Any

from datapool.storage.locations import (
    InvalidLocation,
    azure_location,
    gcs_location,
    local_location,
    parse_bucket_path,
    parse_container_path,
    s3_location,
)
from datapool.v1 import common_pb2, scheduler_pb2
from services.gateway.errors import GatewayError, bad_request, unsupported

_PURPOSES = {
    "INPUT": scheduler_pb2.INPUT,
    "LIGHTLY": scheduler_pb2.LIGHTLY,
    "INPUT_OUTPUT": scheduler_pb2.INPUT_OUTPUT,
}
# Fields every type may carry: thumbnails are a Lightly Platform display concern, and datapool
# writes none, so the client's default thumbSuffix is accepted and has no effect.
_COMMON = {"type", "purpose", "fullPath", "thumbSuffix", "id"}
_FIELDS = {
    "S3": {"s3Region", "s3AccessKeyId", "s3SecretAccessKey"},
    "S3DelegatedAccess": {"s3Region", "s3ARN", "s3ExternalId"},
    "GCS": {"gcsProjectId", "gcsCredentials"},
    "AZURE": {"accountName", "accountKey"},
    "LOCAL": {"webServerLocation", "relativePath"},
}


def purpose(body: dict[str, Any]) -> int:
    """Lightly's default, INPUT_OUTPUT, keeps the pool at the location's `.lightly/` prefix (the
    scheduler sets both datasources and never lists that prefix as input)."""
    value = body.get("purpose", "INPUT_OUTPUT")
    if value not in _PURPOSES:
        raise bad_request(f"purpose: {value!r} is not one of INPUT, LIGHTLY, INPUT_OUTPUT")
    return _PURPOSES[value]


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise GatewayError(400, "MALFORMED_REQUEST", f"{key}: expected a string")
    return value


def location(body: dict[str, Any]) -> common_pb2.StoreLocation:
    """The body's location; 400 naming the field for anything malformed or unsupported."""
    kind = body.get("type")
    if kind not in _FIELDS:
        kinds = ", ".join(_FIELDS)
        raise unsupported(f"datasource type {kind!r} (datapool reads {kinds})")
    for key, value in body.items():
        if key not in _COMMON | _FIELDS[kind] and value is not None:
            raise unsupported(f"datasource field {key!r} of type {kind}")
    path = _text(body, "fullPath")
    try:
        if kind == "S3" or kind == "S3DelegatedAccess":
            bucket, prefix = parse_bucket_path(path, "s3")
            if kind == "S3":
                auth = {"access_key_id": _text(body, "s3AccessKeyId")}
                auth["secret_access_key"] = _text(body, "s3SecretAccessKey")
            else:
                auth = {"role_arn": _text(body, "s3ARN"), "external_id": _text(body, "s3ExternalId")}
            return s3_location(bucket, prefix, region=_text(body, "s3Region"), **auth)
        if kind == "GCS":
            bucket, prefix = parse_bucket_path(path, "gs")
            return gcs_location(
                bucket,
                prefix,
                project_id=_text(body, "gcsProjectId"),
                credentials_json=_text(body, "gcsCredentials"),
            )
        if kind == "AZURE":
            container, prefix = parse_container_path(path)
            account, sas = _text(body, "accountName"), _text(body, "accountKey")
            return azure_location(account, container, prefix, sas_token=sas)
        if not path.startswith("/"):
            # Lightly's LOCAL paths are relative to a web server's root; datapool's services read
            # folders directly, so the path must be absolute on their machine.
            raise bad_request(f"fullPath: {path!r}: a LOCAL datasource must be an absolute folder path")
        return local_location(path)
    except InvalidLocation as e:
        raise bad_request(f"fullPath: {e}") from None


_PURPOSE_NAMES = {value: name for name, value in _PURPOSES.items()}
# Credentials never leave the scheduler (its reply masks them). Lightly's models require a value
# (an external id of 10 or more of [a-zA-Z0-9_+=,.@:/-]), so a masked one reads as this.
MASKED = "REDACTED-BY-DATAPOOL"


def _masked(value: str) -> str:
    return MASKED if value else ""


def as_lightly(ds: scheduler_pb2.Datasource) -> dict[str, Any]:
    """The scheduler's datasource as Lightly's DatasourceConfig body, credentials masked."""
    loc = ds.location
    body: dict[str, Any] = {"purpose": _PURPOSE_NAMES.get(ds.purpose, "INPUT")}
    kind = loc.WhichOneof("kind")
    if kind == "s3":
        s3 = loc.s3
        # Lightly requires a region; the SDKs' default applies where none was given.
        body |= {"fullPath": f"s3://{s3.bucket}/{s3.prefix}", "s3Region": s3.region or "us-east-1"}
        if s3.WhichOneof("auth") == "delegated_role":
            role = s3.delegated_role
            body |= {"type": "S3DelegatedAccess", "s3ARN": role.role_arn}
            body["s3ExternalId"] = _masked(role.external_id)
        else:
            body |= {"type": "S3", "s3AccessKeyId": MASKED, "s3SecretAccessKey": MASKED}
    elif kind == "gcs":
        gcs = loc.gcs
        body |= {"type": "GCS", "fullPath": f"gs://{gcs.bucket}/{gcs.prefix}", "gcsProjectId": gcs.project_id}
        body["gcsCredentials"] = _masked(gcs.credentials_json)
    elif kind == "azure":
        az = loc.azure
        body |= {"type": "AZURE", "fullPath": f"{az.container}/{az.prefix}", "accountName": az.account_name}
        body["accountKey"] = _masked(az.sas_token)
    else:
        body |= {"type": "LOCAL", "fullPath": loc.local.root}
    return body
