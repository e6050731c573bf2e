"""The client over TLS: it trusts only the CA it is given, and every refused connection says why.

Real gRPC servers (no services registered: a call that gets through the handshake is answered
UNIMPLEMENTED, which is how these tests tell "connected" from "refused").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tls_support import PKI, make_pki

from datapool import ApiWorkflowClient
from datapool.client_models import ApiError
from datapool.tls import CA_ENV, server_credentials
from services.common.server import ServiceServer


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _serve(credentials: grpc.ServerCredentials | None, host: str = "127.0.0.1") -> ServiceServer:
    server = ServiceServer("test", f"{host}:0", lambda s: None, [], credentials=credentials)
    server.start()
    return server


@pytest.fixture(scope="module")
def tls_address(pki: PKI) -> Iterator[str]:
    server = _serve(server_credentials(pki.good.cert, pki.good.key))
    yield f"127.0.0.1:{server.port}"
    server.stop(0)


@pytest.fixture(autouse=True)
def no_ca_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CA_ENV, raising=False)


def _refusal(address: str, ca_cert: Path | None) -> ApiError:
    with (
        ApiWorkflowClient(token="t", address=address, ca_cert=ca_cert, timeout=10) as client,
        pytest.raises(ApiError) as caught,
    ):
        # Not retried (not idempotent): the first refusal is the answer.
        client.create_dataset("tls")
    return caught.value


def _refusal_from_a_server(
    credentials: grpc.ServerCredentials | None, ca_cert: Path | None, host: str = "127.0.0.1"
) -> tuple[str, ApiError]:
    """Serves on `host` for one client call: the server's address and the error the call got."""
    server = _serve(credentials, host)
    address = f"{host}:{server.port}"
    try:
        return address, _refusal(address, ca_cert)
    finally:
        server.stop(0)


def test_a_client_trusting_the_ca_gets_through_the_handshake(pki: PKI, tls_address: str) -> None:
    assert _refusal(tls_address, pki.good.ca_cert).code == grpc.StatusCode.UNIMPLEMENTED


def test_the_ca_comes_from_the_environment_when_not_given(
    pki: PKI, tls_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CA_ENV, str(pki.good.ca_cert))
    assert _refusal(tls_address, None).code == grpc.StatusCode.UNIMPLEMENTED


def test_a_certificate_from_another_ca_is_refused_naming_the_address_and_the_ca(
    pki: PKI, tls_address: str
) -> None:
    error = _refusal(tls_address, pki.other.ca_cert)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert (
        f"the TLS certificate of {tls_address} is not signed by the CA in {pki.other.ca_cert}"
        in error.message
    )


def test_an_expired_certificate_is_refused(pki: PKI) -> None:
    credentials = server_credentials(pki.expired_cert, pki.expired_key)
    address, error = _refusal_from_a_server(credentials, pki.good.ca_cert)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert f"the TLS certificate of {address} has expired" in error.message


def test_a_plaintext_client_is_told_that_the_server_requires_tls(tls_address: str) -> None:
    error = _refusal(tls_address, None)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert f"{tls_address} requires TLS: pass ca_cert=PATH (or set ${CA_ENV})" in error.message
    assert "Socket closed" not in error.message


def test_a_certificate_for_other_names_is_refused_naming_the_address(pki: PKI) -> None:
    # 127.0.0.2 is this host too (all of 127/8 is loopback), but the certificate does not name it.
    credentials = server_credentials(pki.good.cert, pki.good.key)
    address, error = _refusal_from_a_server(credentials, pki.good.ca_cert, host="127.0.0.2")
    assert address.startswith("127.0.0.2:")
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert f"the TLS certificate of {address} does not name that host" in error.message


def test_a_tls_client_is_told_that_the_server_is_plaintext(pki: PKI) -> None:
    address, error = _refusal_from_a_server(None, pki.good.ca_cert)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert f"{address} does not speak TLS" in error.message


def test_a_server_that_is_down_is_not_reported_as_a_tls_problem(pki: PKI) -> None:
    server = _serve(None)
    address = f"127.0.0.1:{server.port}"
    server.stop(0)
    error = _refusal(address, None)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert "TLS" not in error.message


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"cannot read the CA certificate {tmp_path / 'nope.crt'}"):
        ApiWorkflowClient(address="127.0.0.1:1", ca_cert=tmp_path / "nope.crt")
