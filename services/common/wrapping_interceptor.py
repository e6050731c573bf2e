"""A server interceptor that wraps each method's behaviour, the base of the metrics and status ones.

A gRPC method handler holds its behaviour under one of four attributes, one per streaming kind, and
is rebuilt with the matching constructor. A streamed response is a generator and has to be wrapped
as one (`yield from`), so a subclass gives one wrapper for unary responses and one for streamed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behaviour = Callable[[Any, grpc.ServicerContext], Any]
# Wraps one method's behaviour; gets the full method name ("/datapool.v1.Scheduler/GetRun").
Wrap = Callable[[str, Behaviour], Behaviour]

# Each kind of method: the handler's attribute, whether its response streams, how to rebuild it.
_KINDS: tuple[tuple[str, bool, Callable[..., grpc.RpcMethodHandler[Any, Any]]], ...] = (
    ("unary_unary", False, grpc.unary_unary_rpc_method_handler),
    ("stream_unary", False, grpc.stream_unary_rpc_method_handler),
    ("unary_stream", True, grpc.unary_stream_rpc_method_handler),
    ("stream_stream", True, grpc.stream_stream_rpc_method_handler),
)


class WrappingInterceptor(grpc.ServerInterceptor):
    """Wraps every known method's behaviour with `unary` or `stream` (by how its response travels)."""

    def __init__(self, unary: Wrap, stream: Wrap) -> None:
        self._unary = unary
        self._stream = stream
        # Per method: the handler last wrapped and its wrapped handler. A registered method's
        # handler is the same object on every call, so it is wrapped once rather than rebuilt
        # per call; one entry per known method (unknown ones have no handler).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: gRPC answers UNIMPLEMENTED itself
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        result = self._wrap(method, handler)
        self._wrapped[method] = (handler, result)
        return result

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        for attribute, streamed, make in _KINDS:
            behaviour = getattr(handler, attribute)
            if behaviour:
                wrapped = (self._stream if streamed else self._unary)(method, behaviour)
                return make(wrapped, handler.request_deserializer, handler.response_serializer)
        return handler
