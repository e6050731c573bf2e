"""Bearer tokens on every call: the server-side check and the client-side attachment.

The scheduler checks the user's token (DATAPOOL_TOKEN); the selector and the embedders
check the internal token, which only the scheduler holds and attaches to every call it
makes to them. Health and reflection stay open, so probes need no credentials.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc

_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_HEADER = "authorization"

if TYPE_CHECKING:
    Continuation = Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None]


def _abort_with(message: str) -> Callable[[object, grpc.ServicerContext], Any]:
    def abort(_request: object, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return abort


def _deny(handler: grpc.RpcMethodHandler[Any, Any], message: str) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as `handler` (so streams are answered as streams) that refuses."""
    abort = _abort_with(message)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


def _sent_token(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == _HEADER:
            return (value if isinstance(value, str) else value.decode()).removeprefix("Bearer ").strip()
    return ""


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses every call but health and reflection unless it carries an accepted token.

    `tokens`: one token, or a function giving the tokens accepted now (several while one is
    rotated out: `services.common.token_file`), asked on every call.
    `missing` and `refused` are the UNAUTHENTICATED messages for no token and a wrong one;
    each says where the caller gets the right token.
    """

    def __init__(self, tokens: str | Callable[[], Sequence[bytes]], *, missing: str, refused: str) -> None:
        if isinstance(tokens, str):
            if not tokens:
                raise ValueError("TokenInterceptor needs a non-empty token")
            fixed = (tokens.encode(),)
            self._tokens: Callable[[], Sequence[bytes]] = lambda: fixed
        else:
            self._tokens = tokens
        self._missing = missing
        self._refused = refused

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        refusal = self.refusal(handler_call_details)
        return handler if refusal is None else _deny(handler, refusal)

    def refusal(self, handler_call_details: grpc.HandlerCallDetails) -> str | None:
        """Why the call is refused (its UNAUTHENTICATED message), None when it may go on."""
        if handler_call_details.method.startswith(_OPEN_PREFIXES):
            return None
        sent = _sent_token(handler_call_details)
        if not sent:
            return self._missing
        sent_bytes = sent.encode()
        # Compared with every token (no early exit), so the time taken says nothing about which matched.
        if not any([hmac.compare_digest(sent_bytes, t) for t in self._tokens()]):
            return self._refused
        return None


def internal_token_interceptor(token: str, service: str) -> TokenInterceptor:
    """The selector's or an embedder's check of the scheduler's internal token."""
    return TokenInterceptor(
        token,
        missing=(
            f"no internal token was sent: the {service} only answers the datapool scheduler, "
            "which sends the token named by its --internal-token-file / $DATAPOOL_INTERNAL_TOKEN_FILE"
        ),
        refused=(
            f"the internal token was refused: start the scheduler and the {service} with the same "
            "--internal-token-file (or $DATAPOOL_INTERNAL_TOKEN_FILE)"
        ),
    )


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: tuple[tuple[str, str | bytes], ...] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _ClientCallDetails(_CallDetails, grpc.ClientCallDetails):
    pass


class _AttachToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._entry = (_HEADER, f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0] != _HEADER]
        return _ClientCallDetails(
            details.method,
            details.timeout,
            (*metadata, self._entry),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._with_token(client_call_details), request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Iterator[Any]
    ) -> Any:
        return continuation(self._with_token(client_call_details), request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Iterator[Any]
    ) -> Any:
        return continuation(self._with_token(client_call_details), request_iterator)


def with_token(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """`channel`, sending `token` on every call; the channel itself when there is no token."""
    if not token:
        return channel
    return grpc.intercept_channel(channel, _AttachToken(token))
