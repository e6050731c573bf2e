"""Every call a ServiceServer answers is counted and timed by method and by the status code the caller got."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import REGISTRY

from datapool.channels import make_channel
from datapool.errors import InvalidArgument
from services.common.auth import internal_token_interceptor, with_token
from services.common.server import ServiceServer

SERVICE = "test.Probe"
TOKEN = "probe-token-0123456789"


def _ok(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def _refused(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise InvalidArgument("request: refused on purpose")


def _crash(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise RuntimeError("a bug")


def _stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield from (request, request, request)


def _stream_refused(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield request
    raise InvalidArgument("request: refused after one message")


def _register(server: grpc.Server) -> None:
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "Ok": grpc.unary_unary_rpc_method_handler(_ok),
        "Refused": grpc.unary_unary_rpc_method_handler(_refused),
        "Crash": grpc.unary_unary_rpc_method_handler(_crash),
        "Stream": grpc.unary_stream_rpc_method_handler(_stream),
        "StreamRefused": grpc.unary_stream_rpc_method_handler(_stream_refused),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
def address() -> Iterator[str]:
    server = ServiceServer(
        "probe",
        "127.0.0.1:0",
        _register,
        [SERVICE],
        interceptors=[internal_token_interceptor(TOKEN, "probe")],
    )
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace=0)


def calls(method: str, code: str) -> float:
    labels = {"method": f"/{SERVICE}/{method}", "code": code}
    return REGISTRY.get_sample_value("datapool_rpc_requests_total", labels) or 0.0


def timed(method: str, code: str) -> float:
    labels = {"method": f"/{SERVICE}/{method}", "code": code}
    return REGISTRY.get_sample_value("datapool_rpc_duration_seconds_count", labels) or 0.0


def test_calls_are_counted_and_timed_by_method_and_status_code(address: str) -> None:
    cases = [("Ok", "OK"), ("Refused", "INVALID_ARGUMENT"), ("Crash", "UNKNOWN")]
    before = {case: (calls(*case), timed(*case)) for case in cases}
    with make_channel(address) as channel:
        stub = with_token(channel, TOKEN)
        for method, code in cases:
            for _ in range(2):
                call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = stub.unary_unary(f"/{SERVICE}/{method}")
                if code == "OK":
                    assert call(b"x", timeout=10) == b"x"
                else:
                    with pytest.raises(grpc.RpcError) as e:
                        call(b"x", timeout=10)
                    assert e.value.code().name == code
    for case in cases:
        assert calls(*case) == before[case][0] + 2, case
        assert timed(*case) == before[case][1] + 2, case


def test_a_stream_is_counted_once_with_its_final_status(address: str) -> None:
    ok, refused = calls("Stream", "OK"), calls("StreamRefused", "INVALID_ARGUMENT")
    with make_channel(address) as channel:
        stub = with_token(channel, TOKEN)
        stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = stub.unary_stream(f"/{SERVICE}/Stream")
        assert list(stream(b"y", timeout=10)) == [b"y"] * 3
        refused_stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = stub.unary_stream(
            f"/{SERVICE}/StreamRefused"
        )
        received: list[bytes] = []
        with pytest.raises(grpc.RpcError) as e:
            received.extend(refused_stream(b"z", timeout=10))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and received == [b"z"]
    assert calls("Stream", "OK") == ok + 1
    assert calls("Stream", "UNKNOWN") == 0
    assert calls("StreamRefused", "INVALID_ARGUMENT") == refused + 1


def test_a_call_the_token_check_refuses_is_counted_as_unauthenticated(address: str) -> None:
    before = calls("Ok", "UNAUTHENTICATED")
    with make_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/Ok")
        with pytest.raises(grpc.RpcError) as e:
            call(b"x", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert calls("Ok", "UNAUTHENTICATED") == before + 1
