"""WrappingInterceptor wraps a method's handler once and reuses it while the handler it is given
stays the same object; any other handler (a refusal from the token check) is wrapped and used."""

from __future__ import annotations

from typing import Any, NamedTuple

import grpc

from services.common.wrapping_interceptor import Behaviour, WrappingInterceptor

METHOD = "/test.Probe/Ok"


class _Details(NamedTuple):
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


def _tagging(wraps: list[str]) -> Any:
    def wrap(method: str, fn: Behaviour) -> Behaviour:
        wraps.append(method)
        return lambda request, context: ("wrapped", fn(request, context))

    return wrap


def _intercept(interceptor: WrappingInterceptor, handler: grpc.RpcMethodHandler[Any, Any]) -> Any:
    details: Any = _Details(METHOD)
    return interceptor.intercept_service(lambda _d: handler, details)


def test_a_method_is_wrapped_once_while_its_handler_stays_the_same() -> None:
    wraps: list[str] = []
    interceptor = WrappingInterceptor(_tagging(wraps), _tagging(wraps))
    handler: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
        lambda request, _context: request * 2
    )
    first = _intercept(interceptor, handler)
    second = _intercept(interceptor, handler)
    assert second is first
    assert wraps == [METHOD]
    assert first.unary_unary(21, None) == ("wrapped", 42)


def test_another_handler_for_the_method_is_wrapped_and_answers_instead_of_the_cached_one() -> None:
    wraps: list[str] = []
    interceptor = WrappingInterceptor(_tagging(wraps), _tagging(wraps))
    allowed: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
        lambda _request, _context: "answer"
    )
    refused: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
        lambda _request, _context: "refusal"
    )
    assert _intercept(interceptor, allowed).unary_unary(None, None) == ("wrapped", "answer")
    assert _intercept(interceptor, refused).unary_unary(None, None) == ("wrapped", "refusal")
    assert _intercept(interceptor, allowed).unary_unary(None, None) == ("wrapped", "answer")
    assert wraps == [METHOD, METHOD, METHOD]
