"""Opening a gRPC channel to a datapool service: the client half of the transport settings.

Clients (the Python client, the CLI, the scheduler calling the other services) need only
this; the servers' half (options, interceptors, graceful stop) is in `services.common.server`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Both ends: explicit message-size limits and keepalive (servers add theirs on top).
COMMON_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

# Targets that name a resolver (`dns:///embedder-headless:50053`, `ipv4:a:1,b:2`) may stand for
# several servers: calls go to each in turn, not all to the first address (gRPC's pick_first).
_RESOLVER_SCHEMES = ("dns:", "ipv4:", "ipv6:")


@dataclass(frozen=True)
class ChannelTLS:
    """TLS for a channel: the credentials (`datapool.tls`), and options such as the name expected
    in the server's certificate (`grpc.ssl_target_name_override`)."""

    credentials: grpc.ChannelCredentials
    options: tuple[tuple[str, Any], ...] = ()


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
    address: str,
    service_config: str | None = None,
    extra_options: Iterable[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.Channel:
    """A channel to `address`: TLS with `credentials` (`datapool.tls`), else plaintext."""
    options = [*COMMON_OPTIONS, *extra_options]
    if service_config:
        options += [("grpc.service_config", service_config), ("grpc.enable_retries", 1)]
    if address.startswith(_RESOLVER_SCHEMES):
        options.append(("grpc.lb_policy_name", "round_robin"))
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=options)


def wait_healthy(address: str, timeout: float, credentials: grpc.ChannelCredentials | None = None) -> bool:
    """True once the server at `address` answers SERVING to a health check (over TLS with `credentials`)."""
    deadline = time.monotonic() + timeout
    with make_channel(address, credentials=credentials) as channel:
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
