"""S3 credentials: static keys, the standard chain, or a delegated role refreshed before expiry."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, DeferredRefreshableCredentials

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

# Real STS allows 900 s to 12 h; botocore refreshes 15 min (advisory) / 10 min (mandatory) before expiry.
ROLE_SESSION_SECONDS = 3600


class _FixedProvider(CredentialProvider):
    """Hands botocore the one credentials object this store refreshes."""

    METHOD = "datapool-assume-role"
    CANONICAL_NAME = "datapool-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def role_fetcher(
    sts: STSClient, role_arn: str, external_id: str, duration_s: int = ROLE_SESSION_SECONDS
) -> Any:
    """The refresh function: one AssumeRole call, in the metadata shape botocore expects."""

    def fetch() -> dict[str, str]:
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": f"datapool-{os.getpid()}",
            "DurationSeconds": duration_s,
        }
        if external_id:
            kwargs["ExternalId"] = external_id
        creds = sts.assume_role(**kwargs)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return fetch


def role_session(
    role_arn: str, external_id: str, region: str, endpoint_url: str, config: Config
) -> tuple[boto3.session.Session, DeferredRefreshableCredentials]:
    """A session whose credentials come from assuming `role_arn` with the process's own credentials.

    The process's credentials are resolved by the standard chain (env, config files, instance
    or task role) when the first AssumeRole call happens, not here; nothing here touches the network.
    """
    base = boto3.session.Session(region_name=region or None)
    sts: STSClient = base.client("sts", endpoint_url=endpoint_url or None, config=config)
    credentials = DeferredRefreshableCredentials(
        refresh_using=role_fetcher(sts, role_arn, external_id), method=_FixedProvider.METHOD
    )
    core = botocore.session.Session()
    # Ahead of "env": the role must win even where the process has its own keys in the environment.
    core.get_component("credential_provider").insert_before("env", _FixedProvider(credentials))
    return boto3.session.Session(botocore_session=core, region_name=region or None), credentials
