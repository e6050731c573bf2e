"""The server interceptors of `services.common.server` for a `grpc.aio` server (the scheduler's).

Same behaviour as the threaded server's: metrics outermost (the code the caller gets, refusals
included), then the token check, then domain errors mapped to status codes. On an asyncio server a
method's behaviour is a coroutine function (unary response) or an async generator function
(streamed), so each is wrapped as one; `context.abort` is awaited. A client that goes away
cancels the handler's task (asyncio.CancelledError): counted CANCELLED.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from datapool.errors import DatapoolError
from services.common.auth import TokenInterceptor
from services.common.rpc_metrics import _final_code, _record
from services.common.status import abort_details

if TYPE_CHECKING:
    # Only the stubs make these generic.
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
AsyncBehaviour: TypeAlias = "Callable[[Any, Context], Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
Wrap: TypeAlias = "Callable[[str, AsyncBehaviour], AsyncBehaviour]"

_KINDS: tuple[tuple[str, bool, Callable[..., Handler]], ...] = (
    ("unary_unary", False, grpc.unary_unary_rpc_method_handler),
    ("stream_unary", False, grpc.stream_unary_rpc_method_handler),
    ("unary_stream", True, grpc.unary_stream_rpc_method_handler),
    ("stream_stream", True, grpc.stream_stream_rpc_method_handler),
)


class AioWrappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every known method's behaviour once (a registered handler is the same object on every
    call) with `unary` or `stream`, by how its response travels."""

    def __init__(self, unary: Wrap, stream: Wrap) -> None:
        self._unary = unary
        self._stream = stream
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        result = handler
        for attribute, streamed, make in _KINDS:
            behaviour = getattr(handler, attribute)
            if behaviour:
                wrapped = (self._stream if streamed else self._unary)(method, behaviour)
                result = make(wrapped, handler.request_deserializer, handler.response_serializer)
                break
        self._wrapped[method] = (handler, result)
        return result


def _metrics_unary(method: str, fn: AsyncBehaviour) -> AsyncBehaviour:
    async def wrapped(request: Any, context: Context) -> Any:
        started = time.perf_counter()
        try:
            response = await fn(request, context)
        except asyncio.CancelledError:
            _record(method, grpc.StatusCode.CANCELLED, started)
            raise
        except BaseException:
            _record(method, _final_code(context, failed=True), started)  # type: ignore[arg-type]
            raise
        _record(method, _final_code(context, failed=False), started)  # type: ignore[arg-type]
        return response

    return wrapped


def _metrics_stream(method: str, fn: AsyncBehaviour) -> AsyncBehaviour:
    async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            async for message in fn(request, context):
                yield message
        except (asyncio.CancelledError, GeneratorExit):
            _record(method, grpc.StatusCode.CANCELLED, started)
            raise
        except BaseException:
            _record(method, _final_code(context, failed=True), started)  # type: ignore[arg-type]
            raise
        _record(method, _final_code(context, failed=False), started)  # type: ignore[arg-type]

    return wrapped


class AioRpcMetricsInterceptor(AioWrappingInterceptor):
    """`services.common.rpc_metrics.RpcMetricsInterceptor` for an asyncio server."""

    def __init__(self) -> None:
        super().__init__(_metrics_unary, _metrics_stream)


def _errors_unary(_method: str, fn: AsyncBehaviour) -> AsyncBehaviour:
    async def wrapped(request: Any, context: Context) -> Any:
        try:
            return await fn(request, context)
        except (DatapoolError, OSError) as e:
            await context.abort(*abort_details(e))

    return wrapped


def _errors_stream(_method: str, fn: AsyncBehaviour) -> AsyncBehaviour:
    async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            async for message in fn(request, context):
                yield message
        except (DatapoolError, OSError) as e:
            await context.abort(*abort_details(e))

    return wrapped


class AioDomainErrorInterceptor(AioWrappingInterceptor):
    """`services.common.status.DomainErrorInterceptor` for an asyncio server."""

    def __init__(self) -> None:
        super().__init__(_errors_unary, _errors_stream)


def _deny(handler: Handler, message: str, code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED) -> Handler:
    """A handler of `handler`'s shape that refuses with `code` and `message`."""

    async def refuse(_request: object, context: Context) -> Any:
        await context.abort(code, message)

    async def refuse_stream(_request: object, context: Context) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # an async generator, as a streamed response's behaviour must be

    streamed = handler.response_streaming
    if handler.request_streaming:
        make = grpc.stream_stream_rpc_method_handler if streamed else grpc.stream_unary_rpc_method_handler
    else:
        make = grpc.unary_stream_rpc_method_handler if streamed else grpc.unary_unary_rpc_method_handler
    return make(refuse_stream if streamed else refuse)


class AioUnaryCapInterceptor(grpc.aio.ServerInterceptor):
    """At most `limit` unary calls in flight; past it, RESOURCE_EXHAUSTED at once (load shedding).

    Why: every call waits for its turn on the one event loop, so past what the loop answers the
    calls queue, and with only the server's cap on all calls (256, sized for long WatchRun
    streams) the queue grew until calls passed their deadline (DEADLINE_EXCEEDED, which callers
    cannot tell from a fault). Counted from when the server takes the call (its handling task;
    the interceptors run in it) until that task ends, whatever way it ends; streams are not
    counted (the server's cap bounds them).
    """

    def __init__(self, limit: int, flag: str) -> None:
        self.limit = limit
        self.in_flight = 0
        self._message = (
            f"the scheduler is answering {limit} calls already ({flag}); retry in a moment or from "
            "another replica"
        )
        self._refusals: dict[str, Handler] = {}

    def _release(self, _task: object) -> None:
        self.in_flight -= 1

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        task = asyncio.current_task()
        if handler is None or handler.request_streaming or handler.response_streaming or task is None:
            return handler
        if self.in_flight >= self.limit:
            refusal = self._refusals.get(handler_call_details.method)
            if refusal is None:
                refusal = _deny(handler, self._message, grpc.StatusCode.RESOURCE_EXHAUSTED)
                self._refusals[handler_call_details.method] = refusal
            return refusal
        self.in_flight += 1
        task.add_done_callback(self._release)
        return handler


class AioTokenInterceptor(grpc.aio.ServerInterceptor):
    """`services.common.auth.TokenInterceptor`'s check (the same tokens and messages) for an
    asyncio server."""

    def __init__(self, check: TokenInterceptor) -> None:
        self._check = check

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        refusal = self._check.refusal(handler_call_details)
        return handler if refusal is None else _deny(handler, refusal)
