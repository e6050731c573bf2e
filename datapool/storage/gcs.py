"""Google Cloud Storage (or an emulator such as fake-gcs-server) as a datasource."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import IO, Any

import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage  # type: ignore[import-untyped]
from google.cloud.storage.retry import DEFAULT_RETRY  # type: ignore[import-untyped]
from google.oauth2 import service_account

from datapool.storage.base import ObjectInfo, StoreAuthError, StoreError
from datapool.storage.endpoints import gcs_emulator
from datapool.storage.remote import DEFAULT_OPTIONS, RemoteOptions, RemoteStore
from datapool.v1 import common_pb2

_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
# Above this an upload is resumable in chunks of this size, so a retry resends one chunk.
CHUNK_SIZE = 8 << 20
_UNAVAILABLE = (
    gexc.RetryError,
    gexc.ServerError,
    gexc.TooManyRequests,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    google.auth.exceptions.TransportError,
)


def _credentials(credentials_json: str, where: str) -> Credentials:
    if not credentials_json:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    try:
        info = json.loads(credentials_json)
        creds: Credentials = service_account.Credentials.from_service_account_info(info, scopes=_SCOPES)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, KeyError) as e:
        # Never echo the JSON or the parser's excerpt of it: it holds a private key.
        raise StoreAuthError(
            f"credentials_json for {where} is not a valid service-account key ({type(e).__name__})"
        ) from None
    return creds


class GcsStore(RemoteStore):
    def __init__(self, location: common_pb2.GcsLocation, options: RemoteOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(location.prefix, options)
        if not location.bucket:
            raise StoreError("GCS location has no bucket")
        self.bucket_name = bucket = location.bucket
        self.endpoint_url = endpoint_url = location.endpoint_url
        project_id, credentials_json = location.project_id, location.credentials_json
        retry_timeout_s = options.retry_timeout_s
        self._timeout = (options.connect_timeout_s, options.read_timeout_s)
        # Uploads are retried too: a plain put rewrites the same bytes, and a conditional put with
        # if_generation_match=0 is idempotent (a replay sees 412, which put_if_absent reports as False).
        self._retry = DEFAULT_RETRY.with_timeout(retry_timeout_s)
        emulator = gcs_emulator(endpoint_url)
        self._client = storage.Client(
            project=project_id or "datapool",
            credentials=_credentials("" if emulator else credentials_json, self.describe()),
            client_options={"api_endpoint": endpoint_url} if endpoint_url else None,
        )
        self._bucket = self._client.bucket(bucket)

    def _root(self) -> str:
        return f"gs://{self.bucket_name}/"

    def _blob(self, key: str, *, chunked: bool = False) -> Any:
        return self._bucket.blob(self._name(key), chunk_size=CHUNK_SIZE if chunked else None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._errors("list", prefix):
            blobs = self._client.list_blobs(
                self._bucket,
                prefix=self.prefix + prefix,
                page_size=self.options.page_size,
                fields="items(name,size,generation),nextPageToken",
                retry=self._retry,
                timeout=self._timeout,
            )
            for blob in blobs:
                yield ObjectInfo(
                    self._key(blob.name), int(blob.size or 0), str(blob.generation), _modified(blob)
                )
        self._bucket_seen = True

    def stat(self, key: str) -> ObjectInfo | None:
        with self._errors("stat", key):
            blob = self._bucket.get_blob(self._name(key), retry=self._retry, timeout=self._timeout)
        if blob is None:
            self._check_bucket_after_404()
            return None
        return ObjectInfo(key, int(blob.size or 0), str(blob.generation), _modified(blob))

    def read(self, key: str) -> bytes:
        with self._errors("read", key):
            data: bytes = self._blob(key).download_as_bytes(retry=self._retry, timeout=self._timeout)
            return data

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        if self._empty_range(key, start, end):
            return b""
        try:
            with self._errors("read", key):
                data: bytes = self._blob(key).download_as_bytes(
                    start=start,
                    end=None if end is None else end - 1,  # GCS ranges are inclusive
                    raw_download=True,
                    retry=self._retry,
                    timeout=self._timeout,
                )
                return data
        except StoreError as e:
            if isinstance(e.__cause__, gexc.RequestRangeNotSatisfiable):
                return b""
            raise

    def _download(self, key: str, out: IO[bytes]) -> None:
        with self._errors("read", key):
            self._blob(key).download_to_file(out, retry=self._retry, timeout=self._timeout)

    def put(self, key: str, data: bytes) -> None:
        blob = self._blob(key, chunked=len(data) > CHUNK_SIZE)
        with self._errors("put", key):
            blob.upload_from_string(data, retry=self._retry, timeout=self._timeout)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        blob = self._blob(key, chunked=len(data) > CHUNK_SIZE)

        def put() -> None:
            blob.upload_from_string(data, if_generation_match=0, retry=self._retry, timeout=self._timeout)

        return self._put_unless_exists(key, put, gexc.PreconditionFailed)

    def delete(self, key: str) -> None:
        try:
            with self._errors("delete", key):
                self._blob(key).delete(retry=self._retry, timeout=self._timeout)
        except StoreError as e:
            if not isinstance(e.__cause__, gexc.NotFound):
                raise
            self._check_bucket_after_404()

    def _bucket_exists(self) -> bool:
        try:
            with self._errors("list", ""):
                return bool(self._bucket.exists(retry=self._retry, timeout=self._timeout))
        except StoreError as e:
            if isinstance(e.__cause__, gexc.Forbidden):
                return True  # existence is unknown without storage.buckets.get; let the operation say
            raise

    @contextlib.contextmanager
    def _errors(self, op: str, key: str) -> Iterator[None]:
        try:
            yield
        except gexc.NotFound as e:
            if op == "list":
                raise self._bucket_missing() from e
            self._check_bucket_after_404()
            if op in ("read", "stat"):
                raise self._not_found(key) from e
            raise StoreError(f"{op} of {key!r} in {self.describe()} failed: not found") from e
        except gexc.Forbidden as e:
            raise self._denied(op, key) from e
        except (gexc.Unauthorized, google.auth.exceptions.RefreshError) as e:
            raise StoreAuthError(f"the credentials for {self.describe()} were rejected") from e
        except google.auth.exceptions.DefaultCredentialsError as e:
            raise StoreAuthError(f"no usable Google credentials for {self.describe()}") from e
        except _UNAVAILABLE as e:
            service = self.endpoint_url or "Google Cloud Storage"
            tried = f"within {self.options.retry_timeout_s:.0f}s of retries"
            raise self._unreachable(op, key, service, e, tried) from e
        except gexc.GoogleAPICallError as e:
            raise StoreError(f"{op} of {key!r} in {self.describe()} failed: {e.code} {e.message}") from e


def _modified(blob: Any) -> float | None:
    return None if blob.updated is None else float(blob.updated.timestamp())
