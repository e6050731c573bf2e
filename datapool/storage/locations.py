"""Turns a datasource location message into a Store adapter, and builds such messages."""

from __future__ import annotations

import hashlib
import re
from typing import TypeVar

import grpc

from datapool.storage.base import Store, StoreError
from datapool.storage.local import LocalStore
from datapool.storage.remote import DEFAULT_OPTIONS, RemoteOptions, normalize_prefix
from datapool.storage.timing import timed
from datapool.v1 import common_pb2


class InvalidLocation(StoreError, ValueError):
    """A location (or a path meant to become one) is malformed; the message names the bad part."""

    code = grpc.StatusCode.INVALID_ARGUMENT


# Deliberately loose (dots, underscores): the service itself rejects what it does not host.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_BucketLocation = TypeVar("_BucketLocation", common_pb2.S3Location, common_pb2.GcsLocation)
_CONTAINER = re.compile(r"^(\$root|[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9])$")


def open_store(location: common_pb2.StoreLocation, options: RemoteOptions = DEFAULT_OPTIONS) -> Store:
    """The adapter for `location`; `options` (listing page size, retries, timeouts) apply to object stores.

    Timed by the observer a service installed (`datapool.storage.timing`), if any."""
    return timed(_open_adapter(location, options), location.WhichOneof("kind") or "")


def _open_adapter(location: common_pb2.StoreLocation, options: RemoteOptions) -> Store:
    kind = location.WhichOneof("kind")
    if kind == "local":
        if not location.local.root:
            raise InvalidLocation("location.local.root is empty")
        return LocalStore(location.local.root)
    if kind == "s3":
        from datapool.storage.s3 import S3Store

        return S3Store(_checked_bucket_location(location.s3, "s3"), options)
    if kind == "gcs":
        from datapool.storage.gcs import GcsStore

        return GcsStore(_checked_bucket_location(location.gcs, "gcs"), options)
    if kind == "azure":
        from datapool.storage.azure import AzureStore

        az = common_pb2.AzureLocation()
        az.CopyFrom(location.azure)
        if not az.account_name:
            raise InvalidLocation("location.azure.account_name is empty")
        az.container = _checked_container(az.container, "location.azure.container")
        az.prefix = _checked_prefix(az.prefix, "location.azure.prefix")
        return AzureStore(az, options)
    raise InvalidLocation(f"unsupported datasource location kind: {kind!r}")


def describe_location(location: common_pb2.StoreLocation) -> str:
    """What Store.describe() says for this location, without building a client or showing secrets."""
    kind = location.WhichOneof("kind")
    if kind == "local":
        return f"local folder {location.local.root}"
    if kind == "s3":
        return f"s3://{location.s3.bucket}/{_safe_prefix(location.s3.prefix)}"
    if kind == "gcs":
        return f"gs://{location.gcs.bucket}/{_safe_prefix(location.gcs.prefix)}"
    if kind == "azure":
        az = location.azure
        return f"azure://{az.account_name}/{az.container}/{_safe_prefix(az.prefix)}"
    return f"datasource of kind {kind!r}"


def pool_key(location: common_pb2.StoreLocation) -> str:
    """A stable name for the place a location points at, without its credentials: the same for a
    datasource whose keys were rotated, and safe to store or log (a hash of the rest)."""
    where = common_pb2.StoreLocation()
    where.CopyFrom(location)
    kind = where.WhichOneof("kind")
    if kind == "s3":
        where.s3.ClearField("auth")
    elif kind == "gcs":
        where.gcs.ClearField("credentials_json")
    elif kind == "azure":
        where.azure.ClearField("sas_token")
    return hashlib.sha256(where.SerializeToString(deterministic=True)).hexdigest()


def local_location(root: str) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=root))


def s3_location(
    bucket: str,
    prefix: str = "",
    *,
    region: str = "",
    endpoint_url: str = "",
    access_key_id: str = "",
    secret_access_key: str = "",
    role_arn: str = "",
    external_id: str = "",
) -> common_pb2.StoreLocation:
    """An S3 location with static keys, a delegated role, or (neither) the process's own chain."""
    if role_arn and access_key_id:
        raise InvalidLocation("an S3 location takes access keys or a delegated role, not both")
    s3 = common_pb2.S3Location(
        bucket=_checked_bucket(bucket, "bucket"),
        prefix=_checked_prefix(prefix, "prefix"),
        region=region,
        endpoint_url=endpoint_url,
    )
    if role_arn:
        s3.delegated_role.CopyFrom(common_pb2.S3DelegatedRole(role_arn=role_arn, external_id=external_id))
    elif access_key_id or secret_access_key:
        s3.access_key.CopyFrom(
            common_pb2.S3AccessKey(access_key_id=access_key_id, secret_access_key=secret_access_key)
        )
    return common_pb2.StoreLocation(s3=s3)


def gcs_location(
    bucket: str, prefix: str = "", *, project_id: str = "", credentials_json: str = "", endpoint_url: str = ""
) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(
        gcs=common_pb2.GcsLocation(
            bucket=_checked_bucket(bucket, "bucket"),
            prefix=_checked_prefix(prefix, "prefix"),
            project_id=project_id,
            credentials_json=credentials_json,
            endpoint_url=endpoint_url,
        )
    )


def azure_location(
    account_name: str, container: str, prefix: str = "", *, sas_token: str = "", endpoint_url: str = ""
) -> common_pb2.StoreLocation:
    if not account_name:
        raise InvalidLocation("account_name is empty")
    return common_pb2.StoreLocation(
        azure=common_pb2.AzureLocation(
            account_name=account_name,
            container=_checked_container(container, "container"),
            prefix=_checked_prefix(prefix, "prefix"),
            sas_token=sas_token,
            endpoint_url=endpoint_url,
        )
    )


def parse_bucket_path(path: str, scheme: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' (scheme "s3") or 'gs://bucket/' -> (bucket, normalised prefix)."""
    head = f"{scheme}://"
    if not path.startswith(head):
        raise InvalidLocation(f"resource path {path!r} must start with {head!r}")
    bucket, _, prefix = path[len(head) :].partition("/")
    return _checked_bucket(bucket, f"bucket in {path!r}"), _checked_prefix(prefix, f"prefix in {path!r}")


def parse_container_path(container_name: str) -> tuple[str, str]:
    """Azure 'container/some/prefix/' -> (container, normalised prefix)."""
    if "://" in container_name:
        raise InvalidLocation(
            f"{container_name!r} is not a URL but 'container' or 'container/prefix/' "
            "(the account is a separate argument)"
        )
    container, _, prefix = container_name.strip().lstrip("/").partition("/")
    return (
        _checked_container(container, f"container in {container_name!r}"),
        _checked_prefix(prefix, f"prefix in {container_name!r}"),
    )


def _checked_bucket_location(message: _BucketLocation, kind: str) -> _BucketLocation:
    """A copy of an S3 or GCS location with its bucket checked and its prefix normalised."""
    checked = type(message)()
    checked.CopyFrom(message)
    checked.bucket = _checked_bucket(message.bucket, f"location.{kind}.bucket")
    checked.prefix = _checked_prefix(message.prefix, f"location.{kind}.prefix")
    return checked


def _checked_bucket(bucket: str, what: str) -> str:
    if not _BUCKET.match(bucket):
        raise InvalidLocation(
            f"{what} {bucket!r} is not a valid bucket name (3-222 lowercase letters, digits, '.', '_', '-')"
        )
    return bucket


def _checked_container(container: str, what: str) -> str:
    if not _CONTAINER.match(container):
        raise InvalidLocation(
            f"{what} {container!r} is not a valid container name (3-63 lowercase letters, digits, '-')"
        )
    return container


def _checked_prefix(prefix: str, what: str) -> str:
    try:
        return normalize_prefix(prefix)
    except ValueError as e:
        raise InvalidLocation(f"{what}: {e}") from None


def _safe_prefix(prefix: str) -> str:
    try:
        return normalize_prefix(prefix)
    except ValueError:
        return prefix
