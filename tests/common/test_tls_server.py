"""A service's TLS port: mutual TLS for the selector and embedders, and a plaintext port for
health checks only (Kubernetes' gRPC probes cannot speak TLS)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tls_support import PKI, make_pki

from datapool.channels import make_channel
from datapool.tls import channel_credentials, server_credentials
from services.common.server import ServiceServer


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _health(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode | int:
    """SERVING's number when the check is answered, else the status code of the refusal."""
    with make_channel(address, credentials=credentials) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        except grpc.RpcError as e:
            code: grpc.StatusCode = e.code()
            return code
        return int(reply.status)


def test_mutual_tls_serves_only_callers_with_a_certificate_from_its_ca(pki: PKI) -> None:
    good = pki.good
    server = ServiceServer(
        "test",
        "127.0.0.1:0",
        lambda s: None,
        [],
        credentials=server_credentials(good.cert, good.key, good.ca_cert),
    )
    server.start()
    address = f"127.0.0.1:{server.port}"
    try:
        serving = health_pb2.HealthCheckResponse.SERVING
        assert _health(address, channel_credentials(good.ca_cert, good.cert, good.key)) == serving
        refused = grpc.StatusCode.UNAVAILABLE
        assert _health(address, channel_credentials(good.ca_cert)) == refused  # no certificate
        other = pki.other
        assert _health(address, channel_credentials(good.ca_cert, other.cert, other.key)) == refused
        assert _health(address, None) == refused  # plaintext
    finally:
        server.stop(0)


def test_the_health_port_answers_health_checks_in_plaintext_and_nothing_else(pki: PKI) -> None:
    server = ServiceServer(
        "test",
        "127.0.0.1:0",
        lambda s: None,
        [],
        credentials=server_credentials(pki.good.cert, pki.good.key),
        health_address="127.0.0.1:0",
    )
    server.start()
    health_address = f"127.0.0.1:{server.health_port}"
    try:
        assert server.health_port not in (0, server.port)
        assert _health(health_address, None) == health_pb2.HealthCheckResponse.SERVING
        assert _health(f"127.0.0.1:{server.port}", None) == grpc.StatusCode.UNAVAILABLE
        with make_channel(health_address) as channel:
            reflection: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
            )
            with pytest.raises(grpc.RpcError) as refused:
                reflection(b"", timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        server.stop(0)
        # Stopping takes the health port down with the service.
        assert _health(health_address, None) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(0)
