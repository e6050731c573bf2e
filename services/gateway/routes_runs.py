"""Runs: the two-step schedule, run state, run tags, the report artifact, and the built-in worker."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from datapool.v1 import scheduler_pb2
from services.gateway import models, worker_config
from services.gateway.app import Gateway, PageOffset, PageSize, gateway, page, token
from services.gateway.errors import bad_request, not_found

router = APIRouter()
Gw = Annotated[Gateway, Depends(gateway)]
Token = Annotated[str, Depends(token)]


@router.post("/v1/docker/worker/config/vX", status_code=201)
def create_worker_config(gw: Gw, _tok: Token, body: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
    """Step one of `schedule_compute_worker_run`: unsupported keys are refused here, naming them."""
    return {"id": gw.configs.add(worker_config.from_lightly(body))}


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    config_id: str = Field(alias="configId")
    # Run priorities and worker labels route runs between Lightly Workers; datapool's built-in
    # workers take every run, so both are accepted and have no effect.
    priority: str = "MID"
    runs_on: list[str] = Field(default_factory=list, alias="runsOn")


@router.post("/v1/datasets/{dataset_id}/docker/worker/schedule", status_code=201)
def schedule_run(dataset_id: str, body: ScheduleRequest, gw: Gw, tok: Token) -> dict[str, str]:
    config = gw.configs.get(body.config_id)
    request = scheduler_pb2.ScheduleRunRequest(
        dataset_id=dataset_id,
        worker_config_json=json.dumps(config.worker_config),
        selection_config_json=json.dumps(config.selection_config),
    )
    return {"id": gw.scheduler.call(gw.scheduler.stub.ScheduleRun, request, tok).id}


def _runs(gw: Gateway, dataset_id: str, tok: str) -> list[scheduler_pb2.Run]:
    request = scheduler_pb2.ListRunsRequest(dataset_id=dataset_id)
    return list(gw.scheduler.call(gw.scheduler.stub.ListRuns, request, tok).runs)


_SCHEDULED_STATES = ("OPEN", "LOCKED", "DONE", "CANCELED")


@router.get("/v1/datasets/{dataset_id}/docker/worker/schedule")
def scheduled_runs(dataset_id: str, gw: Gw, tok: Token, state: str | None = None) -> list[dict[str, Any]]:
    """`get_scheduled_compute_worker_runs`: without a state, those not yet DONE or CANCELED. A
    scheduled run is picked up at once (LOCKED until it ends, then DONE); its config id is its id."""
    if state is not None and state not in _SCHEDULED_STATES:
        raise bad_request(f"state: {state!r} is not one of {', '.join(_SCHEDULED_STATES)}")
    runs = [models.scheduled_run(r, r.id) for r in _runs(gw, dataset_id, tok)]
    if state is None:
        return [r for r in runs if r["state"] not in ("DONE", "CANCELED")]
    return [r for r in runs if r["state"] == state]


@router.get("/v1/docker/runs")
def all_runs(
    gw: Gw, tok: Token, page_size: PageSize = None, page_offset: PageOffset = None
) -> list[dict[str, Any]]:
    """`get_compute_worker_runs()`: every dataset's runs, oldest first."""
    return page([models.docker_run(r) for r in _runs(gw, "", tok)], page_size, page_offset)


@router.get("/v1/docker/runs/query/datasetId/{dataset_id}")
def dataset_runs(
    dataset_id: str, gw: Gw, tok: Token, page_size: PageSize = None, page_offset: PageOffset = None
) -> list[dict[str, Any]]:
    """`get_compute_worker_runs(dataset_id=...)`, oldest first."""
    return page([models.docker_run(r) for r in _runs(gw, dataset_id, tok)], page_size, page_offset)


def _run(gw: Gateway, run_id: str, tok: str) -> scheduler_pb2.Run:
    return gw.scheduler.call(gw.scheduler.stub.GetRun, scheduler_pb2.GetRunRequest(run_id=run_id), tok)


@router.get("/v1/docker/runs/schedule/{scheduled_id}")
def run_by_scheduled_id(scheduled_id: str, gw: Gw, tok: Token) -> dict[str, Any]:
    """`get_compute_worker_run_info`, its generator, and `get_compute_worker_run_from_scheduled_run`:
    a scheduled datapool run is picked up at once, so the scheduled id is the run id."""
    return models.docker_run(_run(gw, scheduled_id, tok))


@router.get("/v1/docker/runs/{run_id}")
def run_by_id(run_id: str, gw: Gw, tok: Token) -> dict[str, Any]:
    return models.docker_run(_run(gw, run_id, tok))


@router.get("/v1/docker/runs/{run_id}/tags")
def run_tags(run_id: str, gw: Gw, tok: Token) -> list[dict[str, Any]]:
    run = _run(gw, run_id, tok)
    request = scheduler_pb2.ListTagsRequest(dataset_id=run.dataset_id)
    tags = gw.scheduler.call(gw.scheduler.stub.ListTags, request, tok).tags
    return [models.tag(run.dataset_id, t) for t in tags if t.run_id == run_id]


def _report_resource(run_id: str) -> str:
    return f"report/{run_id}"


@router.get("/v1/docker/runs/{run_id}/artifacts/{artifact_id}/readurl")
def artifact_read_url(run_id: str, artifact_id: str, request: Request, gw: Gw, tok: Token) -> str:
    """The run report is the one artifact (its id is the run's); the client GETs this URL."""
    run = _run(gw, run_id, tok)
    if artifact_id != run.id or not models.in_end_state(run):
        raise not_found(
            f"artifact {artifact_id!r} of run {run_id!r}: datapool keeps one, the ended run's report"
        )
    ticket = gw.tickets.issue(tok, _report_resource(run_id))
    return str(request.url_for("download_report", run_id=run_id).include_query_params(ticket=ticket))


@router.get("/v1/docker/runs/{run_id}/report.json", name="download_report")
def download_report(run_id: str, ticket: str, gw: Gw) -> Response:
    tok = gw.tickets.redeem(ticket, _report_resource(run_id))
    report = gw.scheduler.call(
        gw.scheduler.stub.GetRunReport, scheduler_pb2.GetRunRequest(run_id=run_id), tok
    )
    return Response(report.json, media_type="application/json")


@router.post("/v1/docker/worker", status_code=201)
def register_worker(gw: Gw, tok: Token) -> dict[str, str]:
    """Answered: datapool's embedders and selector are built in and take every run; the name and
    labels have no effect. The scheduler still checks the token."""
    gw.scheduler.call(gw.scheduler.stub.ListDatasets, scheduler_pb2.ListDatasetsRequest(), tok)
    return {"id": models.WORKER_ID}


@router.get("/v1/docker/worker")
def list_workers(gw: Gw, tok: Token) -> list[dict[str, Any]]:
    gw.scheduler.call(gw.scheduler.stub.ListDatasets, scheduler_pb2.ListDatasetsRequest(), tok)
    return [models.worker(gw.started_unix_ms)]
