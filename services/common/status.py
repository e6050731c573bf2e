"""The one place that turns domain errors into gRPC status codes, as a server interceptor.

Domain errors (storage errors among them) carry their code; a stray OSError (a temporary
file, a cache folder) gets the status a person can act on, by errno; anything else stays
UNKNOWN, a bug to fix.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from datapool.errors import DatapoolError

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

_Behaviour = Callable[[Any, grpc.ServicerContext], Any]


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


def _wrap_unary(fn: _Behaviour) -> _Behaviour:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request, context)
        except (DatapoolError, OSError) as e:
            _abort(context, e)

    return wrapped


def _wrap_stream(fn: Callable[[Any, grpc.ServicerContext], Iterator[Any]]) -> _Behaviour:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from fn(request, context)
        except (DatapoolError, OSError) as e:
            _abort(context, e)

    return wrapped


# Each kind of method: the handler's attribute, how to wrap it, and how to build the handler.
_KINDS: tuple[
    tuple[str, Callable[[Any], _Behaviour], Callable[..., grpc.RpcMethodHandler[Any, Any]]], ...
] = (
    ("unary_unary", _wrap_unary, grpc.unary_unary_rpc_method_handler),
    ("stream_unary", _wrap_unary, grpc.stream_unary_rpc_method_handler),
    ("unary_stream", _wrap_stream, grpc.unary_stream_rpc_method_handler),
    ("stream_stream", _wrap_stream, grpc.stream_stream_rpc_method_handler),
)


class DomainErrorInterceptor(grpc.ServerInterceptor):
    """Maps domain errors and stray OSErrors to status codes; anything else stays UNKNOWN."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        for attribute, wrap, make in _KINDS:
            behaviour = getattr(handler, attribute)
            if behaviour:
                return make(wrap(behaviour), handler.request_deserializer, handler.response_serializer)
        return handler
