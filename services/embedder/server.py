"""Wires the servicer into the shared ServiceServer (health, reflection, error mapping)."""

from __future__ import annotations

import grpc

from datapool.v1 import embedder_pb2_grpc
from services.common.auth import internal_token_interceptor
from services.common.server import ServiceServer
from services.embedder.backend_set import BackendSet
from services.embedder.backends import BackendOptions
from services.embedder.backends.base import ModelBackend
from services.embedder.locations_guard import AllowedRoots
from services.embedder.servicer import SERVICE_NAME, EmbedderServicer


def make_server(
    backend: ModelBackend,
    address: str,
    max_workers: int = 16,
    options: BackendOptions | None = None,
    internal_token: str | None = None,
    allowed: AllowedRoots | None = None,
    credentials: grpc.ServerCredentials | None = None,
    health_address: str | None = None,
) -> ServiceServer:
    """A bound, not yet started server; `.port` is the port actually bound (for port 0).

    `backend` serves requests that name no backend; `options` load any other a run asks for.
    With `internal_token`, every call but health and reflection must carry it; with
    `allowed` roots, local datasources outside them are refused. `credentials` and
    `health_address`: TLS, as in `ServiceServer`.
    """
    servicer = EmbedderServicer(BackendSet(backend, options), allowed)

    def register(server: grpc.Server) -> None:
        embedder_pb2_grpc.add_EmbedderServicer_to_server(servicer, server)

    interceptors = [internal_token_interceptor(internal_token, "embedder")] if internal_token else []
    return ServiceServer(
        "embedder",
        address,
        register,
        [SERVICE_NAME],
        max_workers=max_workers,
        interceptors=interceptors,
        credentials=credentials,
        health_address=health_address,
    )
