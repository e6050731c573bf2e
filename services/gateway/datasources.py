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
