"""The Python client. Method names and arguments follow the Lightly client's datapool
workflow, so existing scripts move over by changing one import.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc

from datapool.channels import make_channel, retry_service_config
from datapool.client_models import (
    ApiError,
    ComputeWorkerRun,
    ComputeWorkerRunInfo,
    DatasetType,
    DatasourcePurpose,
    RunState,
    TagData,
    api_error,
    run_info,
    run_record,
)
from datapool.embeddings_csv import write_embeddings_csv
from datapool.run_watch import WATCH_IDLE_TIMEOUT_S, watch_run
from datapool.storage.locations import (
    InvalidLocation,
    azure_location,
    gcs_location,
    parse_bucket_path,
    parse_container_path,
    s3_location,
)
from datapool.tls import client_tls, explain_connection_error
from datapool.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
# Deadlines, per call: every unary call unless named below (the client's `timeout`), then
# the calls that may do more work. SetDatasource probes the location (a put and a delete).
DEFAULT_CALL_DEADLINE_S = 30.0
SET_DATASOURCE_DEADLINE_S = 120.0
EXPORT_FILENAMES_DEADLINE_S = 600.0
EXPORT_EMBEDDINGS_DEADLINE_S = 3600.0
# Pings on an open stream find a dead connection within 20 + 10 s, inside the idle limit.
_CLIENT_KEEPALIVE = [("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000)]
_IDEMPOTENT = [
    "GetDataset",
    "ListDatasets",
    "GetRun",
    "GetRunReport",
    "ListTags",
    "ExportFilenames",
    "SetDatasource",
]

T = TypeVar("T")


class ApiWorkflowClient:
    """Talks to the datapool scheduler over gRPC.

    `address` defaults to $DATAPOOL_ADDRESS, then 127.0.0.1:50051; `token` to $DATAPOOL_TOKEN.
    `ca_cert`: the path of the CA certificate that signed the scheduler's (TLS), default
    $DATAPOOL_CA_CERT; neither: plaintext.
    """

    def __init__(
        self,
        token: str | None = None,
        address: str | None = None,
        timeout: float = DEFAULT_CALL_DEADLINE_S,
        ca_cert: str | os.PathLike[str] | None = None,
    ) -> None:
        self.address = address or os.environ.get("DATAPOOL_ADDRESS") or DEFAULT_ADDRESS
        token = token if token is not None else os.environ.get("DATAPOOL_TOKEN")
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self.ca_cert, credentials = client_tls(ca_cert)
        self._channel = make_channel(
            self.address,
            retry_service_config("datapool.v1.Scheduler", _IDEMPOTENT),
            _CLIENT_KEEPALIVE,
            credentials,
        )
        self._stub = scheduler_pb2_grpc.SchedulerStub(self._channel)
        self._dataset_id: str | None = None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ApiWorkflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return fn(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise self._error(e) from None

    def _stream(
        self, fn: Callable[..., Iterator[T]], request: Any, timeout: float | None = None
    ) -> Iterator[T]:
        try:
            yield from fn(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise self._error(e) from None

    def _error(self, e: grpc.RpcError) -> ApiError:
        """The call's error; a connection that failed over TLS (or the lack of it) says so in words."""
        error = api_error(e)
        if error.code != grpc.StatusCode.UNAVAILABLE:
            return error
        explained = explain_connection_error(error.message, self.address, self.ca_cert)
        return ApiError(error.code, explained) if explained else error

    # datasets

    @property
    def dataset_id(self) -> str:
        if self._dataset_id is None:
            raise ValueError("no dataset selected: call create_dataset() or set_dataset_id_by_name() first")
        return self._dataset_id

    @dataset_id.setter
    def dataset_id(self, dataset_id: str) -> None:
        self._call(self._stub.GetDataset, scheduler_pb2.GetDatasetRequest(id=dataset_id))
        self._dataset_id = dataset_id

    def create_dataset(self, dataset_name: str, dataset_type: DatasetType | str = DatasetType.IMAGES) -> None:
        """Creates the dataset and selects it as the client's current dataset."""
        kind = scheduler_pb2.DatasetType.Value(DatasetType(dataset_type).value)
        ds = self._call(
            self._stub.CreateDataset, scheduler_pb2.CreateDatasetRequest(name=dataset_name, type=kind)
        )
        self._dataset_id = ds.id

    def set_dataset_id_by_name(self, dataset_name: str) -> None:
        ds = self._call(self._stub.GetDataset, scheduler_pb2.GetDatasetRequest(name=dataset_name))
        self._dataset_id = ds.id

    def get_datasets(self) -> list[scheduler_pb2.Dataset]:
        return list(self._call(self._stub.ListDatasets, scheduler_pb2.ListDatasetsRequest()).datasets)

    # datasources

    def set_local_config(
        self,
        resource_path: str,
        purpose: DatasourcePurpose | str = DatasourcePurpose.INPUT,
        bypass_verify: bool = False,
    ) -> None:
        """A local folder as the INPUT (videos) or LIGHTLY (pool) datasource of the current dataset."""
        root = str(Path(resource_path).expanduser().absolute())
        location = common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=root))
        self._set_datasource(location, purpose, bypass_verify)

    def set_s3_config(
        self,
        resource_path: str,
        region: str,
        access_key: str,
        secret_access_key: str,
        purpose: DatasourcePurpose | str = DatasourcePurpose.INPUT,
        endpoint_url: str | None = None,
        bypass_verify: bool = False,
    ) -> None:
        """An S3 prefix (`s3://bucket/prefix/`) read and written with an access key."""
        auth = {"access_key_id": access_key, "secret_access_key": secret_access_key}
        self._set_s3(resource_path, region, endpoint_url, auth, purpose, bypass_verify)

    def set_s3_delegated_access_config(
        self,
        resource_path: str,
        region: str,
        role_arn: str,
        external_id: str,
        purpose: DatasourcePurpose | str = DatasourcePurpose.INPUT,
        endpoint_url: str | None = None,
        bypass_verify: bool = False,
    ) -> None:
        """An S3 prefix the services reach by assuming `role_arn` with their own AWS credentials."""
        auth = {"role_arn": role_arn, "external_id": external_id}
        self._set_s3(resource_path, region, endpoint_url, auth, purpose, bypass_verify)

    def _set_s3(
        self,
        resource_path: str,
        region: str,
        endpoint_url: str | None,
        auth: dict[str, str],
        purpose: DatasourcePurpose | str,
        bypass_verify: bool,
    ) -> None:
        with _named("resource_path"):
            bucket, prefix = parse_bucket_path(resource_path, "s3")
            location = s3_location(bucket, prefix, region=region, endpoint_url=endpoint_url or "", **auth)
        self._set_datasource(location, purpose, bypass_verify)

    def set_gcs_config(
        self,
        resource_path: str,
        project_id: str,
        credentials: str | None,
        purpose: DatasourcePurpose | str = DatasourcePurpose.INPUT,
        endpoint_url: str | None = None,
        bypass_verify: bool = False,
    ) -> None:
        """A GCS prefix (`gs://bucket/prefix/`); `credentials`: service-account JSON, None = anonymous."""
        with _named("resource_path"):
            bucket, prefix = parse_bucket_path(resource_path, "gs")
            location = gcs_location(
                bucket,
                prefix,
                project_id=project_id,
                credentials_json=credentials or "",
                endpoint_url=endpoint_url or "",
            )
        self._set_datasource(location, purpose, bypass_verify)

    def set_azure_config(
        self,
        container_name: str,
        account_name: str,
        sas_token: str,
        purpose: DatasourcePurpose | str = DatasourcePurpose.INPUT,
        endpoint_url: str | None = None,
        bypass_verify: bool = False,
    ) -> None:
        """An Azure Blob container, optionally with a prefix: `container/prefix/`."""
        with _named("container_name"):
            container, prefix = parse_container_path(container_name)
            location = azure_location(
                account_name, container, prefix, sas_token=sas_token, endpoint_url=endpoint_url or ""
            )
        self._set_datasource(location, purpose, bypass_verify)

    def _set_datasource(
        self, location: common_pb2.StoreLocation, purpose: DatasourcePurpose | str, bypass_verify: bool
    ) -> None:
        value = scheduler_pb2.DatasourcePurpose.Value(DatasourcePurpose(purpose).value)
        request = scheduler_pb2.SetDatasourceRequest(
            dataset_id=self.dataset_id, purpose=value, location=location, bypass_verify=bypass_verify
        )
        self._call(self._stub.SetDatasource, request, timeout=SET_DATASOURCE_DEADLINE_S)

    # runs

    def schedule_compute_worker_run(
        self,
        worker_config: dict[str, Any] | None = None,
        selection_config: dict[str, Any] | None = None,
    ) -> str:
        """Validates the configs and schedules a run; returns the scheduled run id."""
        request = scheduler_pb2.ScheduleRunRequest(
            dataset_id=self.dataset_id,
            worker_config_json=json.dumps(worker_config or {}),
            selection_config_json=json.dumps(selection_config or {}),
        )
        return self._call(self._stub.ScheduleRun, request).id

    def get_compute_worker_run_info(self, scheduled_run_id: str) -> ComputeWorkerRunInfo:
        run = self._call(self._stub.GetRun, scheduler_pb2.GetRunRequest(run_id=scheduled_run_id))
        return run_info(run)

    def compute_worker_run_info_generator(
        self, scheduled_run_id: str, idle_timeout_s: float = WATCH_IDLE_TIMEOUT_S
    ) -> Iterator[ComputeWorkerRunInfo]:
        """Yields the run's info on every change of state or message until it ends (a server stream).

        Raises ApiError (DEADLINE_EXCEEDED) when the scheduler sends nothing for `idle_timeout_s`
        seconds: it is frozen, overloaded or unreachable (the run itself may still go on).
        """
        last: tuple[RunState, str] | None = None
        for info in self.watch_compute_worker_run(scheduled_run_id, idle_timeout_s):
            if (info.state, info.message) != last:
                last = (info.state, info.message)
                yield info

    def watch_compute_worker_run(
        self, scheduled_run_id: str, idle_timeout_s: float = WATCH_IDLE_TIMEOUT_S
    ) -> Iterator[ComputeWorkerRunInfo]:
        """Like compute_worker_run_info_generator, but also yields on every progress change.

        Streams that end or break are resubscribed (see `datapool.run_watch`); after
        `idle_timeout_s` seconds without a word from the scheduler, reconnects included, the
        watch raises ApiError (DEADLINE_EXCEEDED).
        """
        return watch_run(self._stub, self._metadata, self.address, scheduled_run_id, idle_timeout_s)

    def get_compute_worker_run_from_scheduled_run(self, scheduled_run_id: str) -> ComputeWorkerRun:
        run = self._call(self._stub.GetRun, scheduler_pb2.GetRunRequest(run_id=scheduled_run_id))
        return run_record(run)

    def download_compute_worker_run_report_json(self, run: ComputeWorkerRun | str) -> dict[str, Any]:
        """The run report: processed and skipped files, frame counts, picks, seconds per stage."""
        run_id = run if isinstance(run, str) else run.id
        report = self._call(self._stub.GetRunReport, scheduler_pb2.GetRunRequest(run_id=run_id))
        result: dict[str, Any] = json.loads(report.json)
        return result

    def download_compute_worker_run_report_html(
        self, run: ComputeWorkerRun | str, output_path: str | os.PathLike[str]
    ) -> None:
        """Writes the run's self-contained report.html (figures, picks, timings) to `output_path`."""
        request = scheduler_pb2.GetRunRequest(run_id=run if isinstance(run, str) else run.id)
        Path(output_path).write_bytes(self._call(self._stub.GetRunReportHtml, request).html)

    # tags and exports

    def get_all_tags(self) -> list[TagData]:
        """Newest first; "initial-tag" (the whole pool) last."""
        resp = self._call(self._stub.ListTags, scheduler_pb2.ListTagsRequest(dataset_id=self.dataset_id))
        return [TagData(t.name, t.run_id, t.frame_count, t.created_unix_ms) for t in resp.tags]

    def get_compute_worker_run_tags(self, run_id: str) -> list[TagData]:
        return [t for t in self.get_all_tags() if t.run_id == run_id]

    def export_filenames_by_tag_name(self, tag_name: str) -> str:
        request = scheduler_pb2.ExportFilenamesRequest(dataset_id=self.dataset_id, tag_name=tag_name)
        return "\n".join(
            self._call(self._stub.ExportFilenames, request, timeout=EXPORT_FILENAMES_DEADLINE_S).filenames
        )

    def download_embeddings_csv(self, output_path: str | os.PathLike[str], tag_name: str = "") -> None:
        """Writes `filenames,embedding_0..embedding_{d-1},labels`, one row per pooled frame."""
        request = scheduler_pb2.ExportEmbeddingsRequest(dataset_id=self.dataset_id, tag_name=tag_name)
        chunks = self._stream(self._stub.ExportEmbeddings, request, timeout=EXPORT_EMBEDDINGS_DEADLINE_S)
        write_embeddings_csv(output_path, chunks)


@contextlib.contextmanager
def _named(argument: str) -> Iterator[None]:
    """Bad location input raises ValueError naming the argument, before any call is made."""
    try:
        yield
    except InvalidLocation as e:
        raise ValueError(f"{argument}: {e}") from None
