"""Store locations that carry credentials of every kind, for tests of sealing and scrubbing.

The values look like real keys (AWS's documented example key, an Azure SAS, a PEM private key) so that
the scrubber's patterns are exercised; none of them opens anything.
"""

from __future__ import annotations

import json

from datapool.v1 import common_pb2

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SAS = "sv=2024-11-04&ss=b&srt=co&sp=rwdl&se=2030-01-01&sig=AbCdEf0123456789%2Bsignature%3D"
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "-----END PRIVATE KEY-----\n"
)


def s3_location() -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(
        s3=common_pb2.S3Location(
            bucket="b",
            prefix="p/",
            access_key=common_pb2.S3AccessKey(access_key_id="AKIAEXAMPLE123", secret_access_key=SECRET),
        )
    )


def azure_location() -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(
        azure=common_pb2.AzureLocation(account_name="acct", container="c", sas_token="?" + SAS)
    )


def gcs_location() -> common_pb2.StoreLocation:
    creds = json.dumps({"type": "service_account", "private_key": PEM, "private_key_id": "0123456789abcdef"})
    return common_pb2.StoreLocation(gcs=common_pb2.GcsLocation(bucket="b", credentials_json=creds))
