"""Server and channel options shared by the three services, in one place.

Every server gets: explicit message-size limits, keepalive, the standard health
service, reflection, the domain-error interceptor, and graceful shutdown on
SIGTERM/SIGINT (health turns NOT_SERVING, in-flight calls get `grace` seconds).
"""

from __future__ import annotations

import errno
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from datapool.errors import DatapoolError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRACE_SECONDS = 5.0

_COMMON_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

# A client balancing over a DNS name (round_robin) re-resolves it only when a connection
# closes; closing each connection after this age (calls in flight finish first: no grace limit)
# lets it find pods added since, e.g. embedders the autoscaler started.
MAX_CONNECTION_AGE_MS = 300_000

_SERVER_OPTIONS: list[tuple[str, Any]] = [
    *_COMMON_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
    ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
]

# Targets that name a resolver (`dns:///embedder-headless:50053`, `ipv4:a:1,b:2`) may stand for
# several servers: calls go to each in turn, not all to the first address (gRPC's pick_first).
_RESOLVER_SCHEMES = ("dns:", "ipv4:", "ipv6:")


def retry_service_config(service: str, idempotent_methods: Iterable[str]) -> str:
    """Retries only for idempotent calls, and only through the service config."""
    names = [{"service": service, "method": m} for m in idempotent_methods]
    config = {
        "methodConfig": [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    return json.dumps(config)


def make_channel(
    address: str, service_config: str | None = None, extra_options: Iterable[tuple[str, Any]] = ()
) -> grpc.Channel:
    options = [*_COMMON_OPTIONS, *extra_options]
    if service_config:
        options += [("grpc.service_config", service_config), ("grpc.enable_retries", 1)]
    if address.startswith(_RESOLVER_SCHEMES):
        options.append(("grpc.lb_policy_name", "round_robin"))
    return grpc.insecure_channel(address, options=options)


# An OSError that no storage adapter turned into a domain error (a temporary file, a
# cache folder): the status a person can act on, by errno.
_ERRNO_CODES = {
    errno.ENOSPC: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.EDQUOT: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.EACCES: grpc.StatusCode.PERMISSION_DENIED,
    errno.EPERM: grpc.StatusCode.PERMISSION_DENIED,
    errno.EROFS: grpc.StatusCode.PERMISSION_DENIED,
    errno.ENOENT: grpc.StatusCode.NOT_FOUND,
    errno.ENAMETOOLONG: grpc.StatusCode.INVALID_ARGUMENT,
}


# Status details travel in a trailer, which clients refuse over 16 KiB ("metadata size exceeds
# hard limit") instead of showing the error: a message that echoes a huge input is cut.
MAX_DETAILS_CHARS = 4000


def _abort(context: grpc.ServicerContext, e: Exception) -> None:
    if isinstance(e, DatapoolError):
        text = str(e)
        if len(text) > MAX_DETAILS_CHARS:
            text = f"{text[:MAX_DETAILS_CHARS]}... (cut; {len(text)} characters in all)"
        context.abort(e.code, text)
    assert isinstance(e, OSError)
    where = f": {e.filename}" if e.filename else ""
    what = "disk full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or type(e).__name__)
    context.abort(_ERRNO_CODES.get(e.errno or 0, grpc.StatusCode.INTERNAL), f"{what}{where} ({e.strerror})")


def _wrap_unary(fn: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request, context)
        except (DatapoolError, OSError) as e:
            _abort(context, e)

    return wrapped


def _wrap_stream(
    fn: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from fn(request, context)
        except (DatapoolError, OSError) as e:
            _abort(context, e)

    return wrapped


class DomainErrorInterceptor(grpc.ServerInterceptor):
    """The one place that maps domain errors (storage errors among them) and stray OSErrors
    to status codes; anything else stays UNKNOWN, a bug to fix."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_stream(handler.stream_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return handler


class ServiceServer:
    """A started gRPC server with health and reflection, stoppable gracefully."""

    def __init__(
        self,
        name: str,
        address: str,
        register: Callable[[grpc.Server], None],
        service_names: list[str],
        max_workers: int = 16,
        interceptors: Sequence[grpc.ServerInterceptor] = (),
    ) -> None:
        self.name = name
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name),
            options=_SERVER_OPTIONS,
            interceptors=[*interceptors, DomainErrorInterceptor()],
        )
        register(self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [
                *service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self.server,
        )
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(f"{name}: cannot bind {address}")
        self._service_names = service_names
        self._stopped = threading.Event()

    def start(self) -> None:
        self.server.start()
        for service in ["", *self._service_names]:
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s listening on port %d", self.name, self.port)

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        log.info("%s stopped", self.name)

    def serve_until_signal(self, grace: float = GRACE_SECONDS) -> None:
        """Blocks until SIGTERM or SIGINT, then stops gracefully."""
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("%s: signal %d, shutting down", self.name, signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        stop.wait()
        self.stop(grace)


def wait_healthy(address: str, timeout: float) -> bool:
    """True once the server at `address` answers SERVING to a health check."""
    import time

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    return False


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
