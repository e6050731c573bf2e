"""Endpoints from the environment, for locations that name none (emulators, compatible stores).

A location's own `endpoint_url` wins. Without one, each store honours its SDK's standard variable,
as that SDK would on its own, so a datasource created without an endpoint (as the Lightly client
creates them, through services/gateway) reaches moto, fake-gcs-server or Azurite, or MinIO, R2, ...
"""

from __future__ import annotations

import os

# Azure has no standard variable for a Blob endpoint; `{account}` becomes the account name, e.g.
# http://127.0.0.1:10000/{account} for Azurite.
AZURE_BLOB_ENDPOINT_ENV = "DATAPOOL_AZURE_BLOB_ENDPOINT"


def s3_endpoint(explicit: str) -> str:
    """boto3's service-specific variable first, then the global one (both honoured by boto3 itself;
    resolved here so the store also knows to use path-style addressing, which emulators need)."""
    return explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""


def gcs_emulator(explicit: str) -> str:
    """STORAGE_EMULATOR_HOST, as google-cloud-storage reads it; "" when unset or an endpoint is given.
    With it, the store connects anonymously, as the SDK does for emulators (they check no keys)."""
    return "" if explicit else os.environ.get("STORAGE_EMULATOR_HOST", "")


def azure_account_url(explicit: str, account_name: str) -> str:
    if explicit:
        return explicit
    template = os.environ.get(AZURE_BLOB_ENDPOINT_ENV, "")
    if template:
        return template.replace("{account}", account_name)
    return f"https://{account_name}.blob.core.windows.net"
