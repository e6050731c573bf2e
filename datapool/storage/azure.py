"""Azure Blob Storage (or Azurite) as a datasource, authorised by a SAS token."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient, ContainerClient, ExponentialRetry

from datapool.storage.base import ObjectInfo, StoreAuthError, StoreError, StoreUnavailable
from datapool.storage.endpoints import azure_account_url
from datapool.storage.remote import DEFAULT_OPTIONS, RemoteOptions, RemoteStore
from datapool.v1 import common_pb2

_DENIED_CODES = frozenset(
    {
        "AuthorizationPermissionMismatch",
        "AuthorizationResourceTypeMismatch",
        "AuthorizationServiceMismatch",
        "AuthorizationSourceIPMismatch",
        "AuthorizationProtocolMismatch",
        "InsufficientAccountPermissions",
    }
)
# Objects above this go up as blocks, so a retry resends one block, not the whole object.
MAX_SINGLE_PUT = 8 << 20
BLOCK_SIZE = 4 << 20


class AzureStore(RemoteStore):
    def __init__(self, location: common_pb2.AzureLocation, options: RemoteOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(location.prefix, options)
        account_name, container = location.account_name, location.container
        if not account_name or not container:
            raise StoreError("Azure location needs both account_name and container")
        self.account_name = account_name
        self.container = container
        endpoint_url, sas_token = location.endpoint_url, location.sas_token
        # Without an endpoint in the location: $DATAPOOL_AZURE_BLOB_ENDPOINT, else Azure's own.
        self.account_url = azure_account_url(endpoint_url, account_name).rstrip("/")
        self._client = ContainerClient(
            self.account_url,
            container,
            credential=sas_token.lstrip("?") or None,
            retry_policy=ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=options.max_attempts - 1
            ),
            connection_timeout=options.connect_timeout_s,
            read_timeout=options.read_timeout_s,
            max_single_put_size=MAX_SINGLE_PUT,
            max_block_size=BLOCK_SIZE,
        )

    def _root(self) -> str:
        return f"azure://{self.account_name}/{self.container}/"

    def _blob(self, key: str) -> BlobClient:
        return self._client.get_blob_client(self._name(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._errors("list", prefix):
            pages = self._client.list_blobs(
                name_starts_with=self.prefix + prefix, results_per_page=self.options.page_size
            ).by_page()
            for page in pages:
                for blob in page:
                    yield ObjectInfo(
                        self._key(blob.name), blob.size, blob.etag.strip('"'), _modified(blob.last_modified)
                    )
        self._bucket_seen = True

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors("stat", key):
                props = self._blob(key).get_blob_properties()
        except StoreError as e:
            if _code(e.__cause__) == "BlobNotFound":
                return None
            raise
        return ObjectInfo(key, props.size, props.etag.strip('"'), _modified(props.last_modified))

    def read(self, key: str) -> bytes:
        with self._errors("read", key):
            return self._blob(key).download_blob(max_concurrency=2).readall()

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        if self._empty_range(key, start, end):
            return b""
        length = None if end is None else end - start
        try:
            with self._errors("read", key):
                return self._blob(key).download_blob(offset=start, length=length).readall()
        except StoreError as e:
            if _status(e.__cause__) == 416:  # the range starts at or past the end
                return b""
            raise

    def _download(self, key: str, out: IO[bytes]) -> None:
        with self._errors("read", key):
            self._blob(key).download_blob(max_concurrency=2).readinto(out)

    def put(self, key: str, data: bytes) -> None:
        with self._errors("put", key):
            self._blob(key).upload_blob(data, overwrite=True, max_concurrency=4)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        def put() -> None:
            # overwrite=False sends If-None-Match: * (on the commit, for a block upload).
            self._blob(key).upload_blob(data, overwrite=False, max_concurrency=4)

        return self._put_unless_exists(key, put, ResourceExistsError)

    def delete(self, key: str) -> None:
        try:
            with self._errors("delete", key):
                self._blob(key).delete_blob()
        except StoreError as e:
            if _code(e.__cause__) != "BlobNotFound":
                raise

    def _bucket_exists(self) -> bool:
        with self._errors("list", ""):
            return self._client.exists()

    @contextlib.contextmanager
    def _errors(self, op: str, key: str) -> Iterator[None]:
        try:
            yield
        except HttpResponseError as e:
            raise self._translate(e, op, key) from e
        except (ServiceRequestError, ServiceResponseError) as e:
            raise self._unreachable(op, key, self.account_url, e) from e
        except AzureError as e:
            raise self._failed(op, key, e) from e

    def _translate(self, e: HttpResponseError, op: str, key: str) -> StoreError:
        code, status = _code(e), _status(e)
        if code == "ContainerNotFound":
            return self._bucket_missing("container")
        if code == "BlobNotFound" or (status == 404 and op in ("read", "stat")):
            return self._not_found(key)
        if isinstance(e, ResourceExistsError):
            return StoreError(f"{op} of {key!r} in {self.describe()}: the object exists")
        if code in _DENIED_CODES:
            return self._denied(op, key, code)
        if isinstance(e, ClientAuthenticationError) or status in (401, 403):
            # AuthenticationFailed (Azure) and AuthorizationFailure (Azurite, and Azure's network
            # rules): the token as a whole is refused, not one permission of it.
            return StoreAuthError(
                f"the SAS token for {self.describe()} was rejected ({code or status}): it may be expired, "
                "forged, signed for another container, or refused by the account's network rules"
            )
        if status >= 500 or status == 429:
            return StoreUnavailable(
                f"{self.describe()} did not {op} {key!r} after {self.options.max_attempts} attempts: "
                f"{code or status}"
            )
        return StoreError(f"{op} of {key!r} in {self.describe()} failed: {code or status}")


def _code(e: BaseException | None) -> str:
    if not isinstance(e, HttpResponseError):
        return ""
    code = getattr(e, "error_code", "") or ""
    return str(getattr(code, "value", code))  # the SDK gives a StorageErrorCode enum or a plain string


def _status(e: BaseException | None) -> int:
    return int(getattr(e, "status_code", 0) or 0) if isinstance(e, HttpResponseError) else 0


def _modified(stamp: datetime | None) -> float | None:
    return None if stamp is None else stamp.timestamp()
