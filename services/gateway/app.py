"""The FastAPI app: shared state, the token, error handlers and the routers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import grpc
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway import errors
from services.gateway.scheduler import Scheduler
from services.gateway.tickets import Tickets
from services.gateway.worker_config import PendingConfigs


@dataclass
class Gateway:
    scheduler: Scheduler
    configs: PendingConfigs = field(default_factory=PendingConfigs)
    tickets: Tickets = field(default_factory=Tickets)
    started_unix_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def token(request: Request) -> str:
    """The caller's token: the Lightly client sends $LIGHTLY_TOKEN as the `token` query parameter;
    a bearer header is accepted too. It becomes the gRPC call's token; the scheduler checks it."""
    value = request.query_params.get("token")
    if value:
        return value
    auth = request.headers.get("authorization", "")
    return auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""


# Lightly's list endpoints page by item counts; the client stops at a page shorter than asked.
PageSize = Annotated[int | None, Query(alias="pageSize", ge=1)]
PageOffset = Annotated[int | None, Query(alias="pageOffset", ge=0)]


def page(items: list[Any], page_size: int | None, page_offset: int | None) -> list[Any]:
    start = page_offset or 0
    return items[start : start + page_size] if page_size else items[start:]


async def _on_http_error(request: Request, exc: Exception) -> object:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (404, 405):
        return await errors.on_unknown_route(request, exc)
    return await errors.on_gateway_error(
        request, errors.GatewayError(exc.status_code, "BAD_REQUEST", str(exc.detail))
    )


def create_app(scheduler_address: str) -> FastAPI:
    from services.gateway import routes_datasets, routes_runs, routes_tags

    app = FastAPI(title="datapool Lightly-compatible REST gateway", docs_url=None, redoc_url=None)
    app.state.gateway = Gateway(Scheduler(scheduler_address))
    app.add_exception_handler(errors.GatewayError, errors.on_gateway_error)
    app.add_exception_handler(grpc.RpcError, errors.on_rpc_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.include_router(routes_datasets.router)
    app.include_router(routes_runs.router)
    app.include_router(routes_tags.router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
