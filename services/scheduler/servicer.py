"""Thin gRPC face of the scheduler: converts messages and calls the domain objects."""

from __future__ import annotations

import time
from typing import cast

import grpc

from datapool.config import parse_run_config_json
from datapool.errors import FailedPrecondition, InvalidArgument, NotFound
from datapool.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from services.common.secrets import redacted
from services.scheduler.datasource_readback import read_back
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import DatasetRow, MetadataDB, RunRow, RunSummary
from services.scheduler.pool_view import PoolView
from services.scheduler.rate_limit import RateLimiter, caller_key
from services.scheduler.remotes import SelectorClient
from services.scheduler.runs import END_STATES, RunManager
from services.scheduler.tags import TagCatalog

ALL_RUN_STATES = tuple(v for v in scheduler_pb2.RunState.values() if v != scheduler_pb2.RUN_STATE_UNSPECIFIED)
WATCH_POLL_S = 0.5
# WatchRun repeats an unchanged run this often, so a client can tell a quiet run from a
# frozen scheduler (datapool.client's idle_timeout_s, 60 s by default).
WATCH_KEEPALIVE_S = 10.0


def _dataset_msg(row: DatasetRow) -> scheduler_pb2.Dataset:
    return scheduler_pb2.Dataset(
        id=row.id,
        name=row.name,
        type=cast("scheduler_pb2.DatasetType.ValueType", row.type),
        created_unix_ms=row.created_unix_ms,
    )


def run_msg(row: RunRow | RunSummary) -> scheduler_pb2.Run:
    return scheduler_pb2.Run(
        id=row.id,
        dataset_id=row.dataset_id,
        state=cast("scheduler_pb2.RunState.ValueType", row.state),
        message=row.message,
        created_unix_ms=row.created_unix_ms,
        updated_unix_ms=row.updated_unix_ms,
        progress=scheduler_pb2.RunProgress(**row.progress),
        tag_names=row.tag_names,
        pool_version=row.pool_version,
    )


def worth_sending(msg: scheduler_pb2.Run, last: scheduler_pb2.Run | None, sent: float) -> bool:
    """WatchRun sends a run when it changed, or to say it is alive (`sent`: time.monotonic())."""
    return (
        last is None
        or msg.state != last.state
        or msg.message != last.message
        or msg.progress != last.progress
        or time.monotonic() - sent >= WATCH_KEEPALIVE_S
    )


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(
        self,
        db: MetadataDB,
        runs: RunManager,
        selector: SelectorClient,
        datasources: DatasourceCatalog,
        schedule_limit: RateLimiter | None = None,
    ) -> None:
        self.db = db
        self.schedule_limit = schedule_limit or RateLimiter(0, 1)
        self.datasources = datasources
        self.runs = runs
        self.tags = TagCatalog(selector)
        self.view = PoolView(selector)

    def CreateDataset(
        self, request: scheduler_pb2.CreateDatasetRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.Dataset:
        if not request.name.strip():
            raise InvalidArgument("dataset_name must not be empty")
        if request.type not in (scheduler_pb2.VIDEOS, scheduler_pb2.IMAGES):
            raise InvalidArgument("dataset_type must be DatasetType.VIDEOS or DatasetType.IMAGES")
        return _dataset_msg(self.db.create_dataset(request.name, request.type))

    def GetDataset(
        self, request: scheduler_pb2.GetDatasetRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.Dataset:
        if request.WhichOneof("key") == "id":
            return _dataset_msg(self.db.get_dataset(dataset_id=request.id))
        if request.WhichOneof("key") == "name":
            return _dataset_msg(self.db.get_dataset(name=request.name))
        raise InvalidArgument("set id or name")

    def ListDatasets(
        self, request: scheduler_pb2.ListDatasetsRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.ListDatasetsResponse:
        return scheduler_pb2.ListDatasetsResponse(datasets=[_dataset_msg(r) for r in self.db.list_datasets()])

    def SetDatasource(
        self, request: scheduler_pb2.SetDatasourceRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.Datasource:
        self.datasources.set(
            request.dataset_id, request.purpose, request.location, verify=not request.bypass_verify
        )
        # The reply never echoes credentials back.
        return scheduler_pb2.Datasource(
            dataset_id=request.dataset_id, purpose=request.purpose, location=redacted(request.location)
        )

    def ScheduleRun(
        self, request: scheduler_pb2.ScheduleRunRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.Run:
        self.schedule_limit.take(caller_key(context.invocation_metadata()))
        dataset = self.db.get_dataset(dataset_id=request.dataset_id)
        config = parse_run_config_json(request.worker_config_json, request.selection_config_json)
        return run_msg(self.runs.schedule(dataset.id, dataset.type, config))

    def GetRun(
        self, request: scheduler_pb2.GetRunRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.Run:
        return run_msg(self.db.get_run_summary(request.run_id))

    def WatchRun(self, request: scheduler_pb2.GetRunRequest, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        last: scheduler_pb2.Run | None = None
        sent = 0.0
        while context.is_active():
            msg = run_msg(self.db.get_run_summary(request.run_id))
            if worth_sending(msg, last, sent):
                yield msg
                last = msg
                sent = time.monotonic()
            if msg.state in END_STATES:
                return
            self.runs.wait_for_change(WATCH_POLL_S)

    def GetRunReport(
        self, request: scheduler_pb2.GetRunRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.RunReport:
        import json

        row = self.db.get_run(request.run_id)
        # A running run's row may hold the draft it saved before its commit (run/draft.py).
        if row.report is None or row.state not in END_STATES:
            raise FailedPrecondition(f"run {row.id} has no report yet; it is still running")
        return scheduler_pb2.RunReport(json=json.dumps(row.report))

    def ListTags(
        self, request: scheduler_pb2.ListTagsRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.ListTagsResponse:
        return scheduler_pb2.ListTagsResponse(tags=self.tags.all(self.pool_location(request.dataset_id)))

    def ExportFilenames(
        self, request: scheduler_pb2.ExportFilenamesRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.ExportFilenamesResponse:
        names = self.tags.filenames(self.pool_location(request.dataset_id), request.tag_name)
        return scheduler_pb2.ExportFilenamesResponse(filenames=names)

    def ExportEmbeddings(self, request: scheduler_pb2.ExportEmbeddingsRequest, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        yield from self.tags.embeddings(self.pool_location(request.dataset_id), request.tag_name)

    def ExportViewFrames(self, request: scheduler_pb2.ExportViewFramesRequest, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        yield from self.view.frames(self.pool_location(request.dataset_id), request.with_cache)

    def ReadFrame(
        self, request: scheduler_pb2.ReadFrameRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.FrameImage:
        return self.view.frame(self.pool_location(request.dataset_id), request.key)

    def GetRunReportHtml(
        self, request: scheduler_pb2.GetRunRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.RunReportHtml:
        row = self.db.get_run(request.run_id)
        return self.view.report_html(self.pool_location(row.dataset_id), row.id)

    def GetDatasource(
        self, request: scheduler_pb2.GetDatasourceRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.Datasource:
        return read_back(self.datasources, request.dataset_id, request.purpose)

    def ListRuns(
        self, request: scheduler_pb2.ListRunsRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.ListRunsResponse:
        if request.dataset_id:
            self.db.get_dataset(dataset_id=request.dataset_id)
            rows = self.db.run_summaries(dataset_id=request.dataset_id)
        else:
            rows = self.db.run_summaries(states=ALL_RUN_STATES)
        return scheduler_pb2.ListRunsResponse(runs=[run_msg(r) for r in rows])

    def pool_location(self, dataset_id: str) -> common_pb2.StoreLocation:
        """The dataset's LIGHTLY datasource: NotFound for an unknown dataset or one without."""
        location = self.datasources.get(dataset_id, scheduler_pb2.LIGHTLY)
        if location is None:
            self.db.get_dataset(dataset_id=dataset_id)  # NotFound naming an unknown dataset
            raise NotFound(f"dataset {dataset_id} has no LIGHTLY datasource, so it has no pool")
        return location  # a datasource row exists only for a dataset (a foreign key; none is deleted)
