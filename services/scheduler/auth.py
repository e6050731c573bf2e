"""Bearer-token check for every scheduler call (health and reflection stay open for probes)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

REFUSED = "the token was refused: call with the scheduler's DATAPOOL_TOKEN (ApiWorkflowClient(token=...))"
MISSING = "the token was refused: no token was sent; pass ApiWorkflowClient(token=...)"


def _deny(message: str) -> grpc.RpcMethodHandler[Any, Any]:
    def abort(_request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(abort)


class TokenInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler_call_details.method.startswith(_OPEN_PREFIXES):
            return continuation(handler_call_details)
        sent = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                sent = value if isinstance(value, str) else value.decode()
        if not sent:
            return _deny(MISSING)
        token = sent.removeprefix("Bearer ").strip().encode()
        if not hmac.compare_digest(token, self._token):
            return _deny(REFUSED)
        return continuation(handler_call_details)
