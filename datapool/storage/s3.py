"""Amazon S3 (or an S3-compatible endpoint) as a datasource."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from datapool.storage.base import (
    ObjectInfo,
    StoreAuthError,
    StoreError,
    StoreUnavailable,
)
from datapool.storage.endpoints import s3_endpoint
from datapool.storage.remote import DEFAULT_OPTIONS, RemoteOptions, RemoteStore
from datapool.storage.s3_auth import role_session
from datapool.v1 import common_pb2

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    }
)
_REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
_UNAVAILABLE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"})
_CONNECTION_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)

# S3 parts must be >= 5 MiB except the last; larger objects go up in parts so a retry resends one part.
MULTIPART_THRESHOLD = 16 << 20
PART_SIZE = 8 << 20
_CHUNK = 1 << 20


class S3Store(RemoteStore):
    def __init__(self, location: common_pb2.S3Location, options: RemoteOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(location.prefix, options)
        if not location.bucket:
            raise StoreError("S3 location has no bucket")
        self.bucket = location.bucket
        self.region = region = location.region
        endpoint_url = location.endpoint_url
        auth = location.WhichOneof("auth")
        role_arn = location.delegated_role.role_arn if auth == "delegated_role" else ""
        external_id = location.delegated_role.external_id if auth == "delegated_role" else ""
        access_key_id = location.access_key.access_key_id if auth == "access_key" else ""
        secret_access_key = location.access_key.secret_access_key if auth == "access_key" else ""
        max_attempts = options.max_attempts
        # Without an endpoint in the location: $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL. STS gets only
        # the location's own endpoint; without one boto3 reads $AWS_ENDPOINT_URL_STS / $AWS_ENDPOINT_URL.
        sts_url = endpoint_url
        endpoint_url = s3_endpoint(endpoint_url)
        self.endpoint_url = endpoint_url
        self.role_arn = role_arn
        config = Config(
            region_name=region or None,
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.read_timeout_s,
            # Emulators and S3-compatible stores rarely resolve bucket subdomains.
            s3={"addressing_style": "path"} if endpoint_url else None,
            max_pool_connections=32,
        )
        # Refreshable role credentials, exposed so that tests and diagnostics can see their expiry.
        self.role_credentials: DeferredRefreshableCredentials | None = None
        if role_arn:
            session, self.role_credentials = role_session(role_arn, external_id, region, sts_url, config)
        elif access_key_id or secret_access_key:
            session = boto3.session.Session(
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                region_name=region or None,
            )
        else:
            session = boto3.session.Session(region_name=region or None)
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url or None, config=config)

    def _root(self) -> str:
        return f"s3://{self.bucket}/"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            PaginationConfig={"PageSize": self.options.page_size},
        )
        with self._errors("list", prefix):
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        self._key(obj["Key"]),
                        obj["Size"],
                        obj["ETag"].strip('"'),
                        obj["LastModified"].timestamp(),
                    )
        self._bucket_seen = True

    def stat(self, key: str) -> ObjectInfo | None:
        name = self._name(key)
        try:
            with self._errors("stat", key):
                head = self._client.head_object(Bucket=self.bucket, Key=name)
        except StoreError as e:
            if _status(e.__cause__) == 404:
                self._check_bucket_after_404()
                return None
            raise
        return ObjectInfo(
            key, head["ContentLength"], head["ETag"].strip('"'), head["LastModified"].timestamp()
        )

    def read(self, key: str) -> bytes:
        with self._errors("read", key):
            return self._client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"].read()

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        if self._empty_range(key, start, end):
            return b""
        last = "" if end is None else str(end - 1)
        try:
            with self._errors("read", key):
                obj = self._client.get_object(
                    Bucket=self.bucket, Key=self._name(key), Range=f"bytes={start}-{last}"
                )
                return obj["Body"].read()
        except StoreError as e:
            # 416: the range starts at or past the end of an object that exists.
            if _status(e.__cause__) == 416:
                return b""
            raise

    def _download(self, key: str, out: IO[bytes]) -> None:
        with self._errors("read", key):
            body = self._client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)

    def put(self, key: str, data: bytes) -> None:
        name = self._name(key)
        with self._errors("put", key):
            if len(data) >= MULTIPART_THRESHOLD:
                self._put_multipart(name, data)
            else:
                self._client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def _put_multipart(self, name: str, data: bytes) -> None:
        upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
        try:
            parts: list[Any] = []
            for number, offset in enumerate(range(0, len(data), PART_SIZE), start=1):
                etag = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data[offset : offset + PART_SIZE],
                )["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Uncompleted parts are billed until aborted.
            with contextlib.suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise

    def put_if_absent(self, key: str, data: bytes) -> bool:
        name = self._name(key)
        for attempt in range(self.options.max_attempts):
            try:
                with self._errors("put", key):
                    self._client.put_object(Bucket=self.bucket, Key=name, Body=data, IfNoneMatch="*")
                return True
            except StoreError as e:
                cause = e.__cause__
                if _status(cause) == 412:
                    return False
                # 409 ConditionalRequestConflict: a concurrent conditional write to the same key is in
                # flight; S3 asks the client to retry, and the retry sees 412 or wins.
                if _code(cause) == "ConditionalRequestConflict" and attempt + 1 < self.options.max_attempts:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise
        raise AssertionError("unreachable")

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def _bucket_exists(self) -> bool:
        try:
            with self._errors("list", ""):
                self._client.head_bucket(Bucket=self.bucket)
        except StoreError as e:
            if _status(e.__cause__) == 404:
                return False
            if _status(e.__cause__) == 403:
                return True  # HeadBucket needs ListBucket; without it the bucket's existence is unknown
            raise
        return True

    @contextlib.contextmanager
    def _errors(self, op: str, key: str) -> Iterator[None]:
        try:
            yield
        except ClientError as e:
            raise self._translate(e, op, key) from e
        except NoCredentialsError as e:
            raise StoreAuthError(
                f"no AWS credentials for {self.describe()}: none in the location and none found by the "
                "standard chain (environment, config files, instance or task role)"
            ) from e
        except _CONNECTION_ERRORS as e:
            raise self._unreachable(op, key, self.endpoint_url or "AWS", e) from e
        except BotoCoreError as e:
            raise self._failed(op, key, e) from e

    def _translate(self, e: ClientError, op: str, key: str) -> StoreError:
        code, status = _code(e), _status(e)
        message = e.response.get("Error", {}).get("Message", "")
        if e.operation_name == "AssumeRole":
            return StoreAuthError(
                f"cannot assume role {self.role_arn} for {self.describe()}: {code} {message}"
            )
        if code == "NoSuchBucket":
            return self._bucket_missing()
        if code in _REGION_CODES or status == 301:
            return self._wrong_region(e)
        if code in _AUTH_CODES:
            return StoreAuthError(f"the credentials for {self.describe()} were rejected: {code}")
        if code == "AccessDenied" or status == 403:
            # HEAD answers have no body, so a bad key and a missing permission look the same there.
            detail = "or the credentials are not valid" if code == "403" else ""
            return self._denied(op, key, detail)
        if code == "NoSuchKey" or (status == 404 and op in ("read", "stat")):
            return self._not_found(key)
        if status >= 500 or code in _UNAVAILABLE_CODES:
            return StoreUnavailable(
                f"{self.describe()} did not {op} {key!r} after {self.options.max_attempts} attempts: {code}"
            )
        return StoreError(f"{op} of {key!r} in {self.describe()} failed: {code} {message}")

    def _wrong_region(self, e: ClientError) -> StoreError:
        headers = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        actual = headers.get("x-amz-bucket-region") or e.response.get("Error", {}).get("Region", "")
        return StoreError(
            f"bucket {self.bucket!r} of {self.describe()} is in region {actual or '(unknown)'!r}, "
            f"but the location says region {self.region or '(default)'!r}"
        )


def _code(e: BaseException | None) -> str:
    return str(e.response.get("Error", {}).get("Code", "")) if isinstance(e, ClientError) else ""


def _status(e: BaseException | None) -> int:
    if not isinstance(e, ClientError):
        return 0
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
