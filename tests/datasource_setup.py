"""Pointing a dataset at any StoreLocation through the client's public set_*_config methods,
as a user would; shared by the end-to-end tests of every test folder."""

from __future__ import annotations

from datapool import ApiWorkflowClient, DatasourcePurpose
from datapool.v1 import common_pb2


def set_location(
    client: ApiWorkflowClient,
    location: common_pb2.StoreLocation,
    purpose: DatasourcePurpose,
    bypass_verify: bool = False,
) -> None:
    """Through the client's public set_*_config methods, as a user would."""
    kind = location.WhichOneof("kind")
    if kind == "local":
        client.set_local_config(location.local.root, purpose, bypass_verify=bypass_verify)
    elif kind == "s3":
        s3 = location.s3
        path = f"s3://{s3.bucket}/{s3.prefix}"
        if s3.WhichOneof("auth") == "delegated_role":
            client.set_s3_delegated_access_config(
                path,
                s3.region,
                s3.delegated_role.role_arn,
                s3.delegated_role.external_id,
                purpose,
                endpoint_url=s3.endpoint_url,
                bypass_verify=bypass_verify,
            )
        else:
            client.set_s3_config(
                path,
                s3.region,
                s3.access_key.access_key_id,
                s3.access_key.secret_access_key,
                purpose,
                endpoint_url=s3.endpoint_url,
                bypass_verify=bypass_verify,
            )
    elif kind == "gcs":
        g = location.gcs
        client.set_gcs_config(
            f"gs://{g.bucket}/{g.prefix}",
            g.project_id,
            g.credentials_json or None,
            purpose,
            endpoint_url=g.endpoint_url,
            bypass_verify=bypass_verify,
        )
    else:
        az = location.azure
        client.set_azure_config(
            f"{az.container}/{az.prefix}",
            az.account_name,
            az.sas_token,
            purpose,
            endpoint_url=az.endpoint_url,
            bypass_verify=bypass_verify,
        )
