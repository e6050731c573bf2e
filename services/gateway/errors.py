"""One place that turns failures into the JSON errors the Lightly client expects.

Lightly answers errors as `{"code": <ApiErrorCode>, "error": <message>}`; its generated client raises
`ApiException` (or `NotFoundException` for 404, `ForbiddenException` for 403, ...) carrying that body.
"""

from __future__ import annotations

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def unsupported(what: str) -> GatewayError:
    """A Lightly feature datapool does not offer: 400 naming it, never silently ignored."""
    return GatewayError(400, "BAD_REQUEST", f"not supported by datapool: {what}")


def bad_request(message: str) -> GatewayError:
    return GatewayError(400, "BAD_REQUEST", message)


def not_found(message: str) -> GatewayError:
    return GatewayError(404, "NOT_FOUND", message)


# Lightly answers a refused token with 403 (its client documents "403: Not authorized for this
# resource or invalid token"), and checks happening in a datasource with 422.
_FROM_GRPC: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "BAD_REQUEST"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "BAD_REQUEST"),
    grpc.StatusCode.NOT_FOUND: (404, "NOT_FOUND"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "CONFLICT"),
    grpc.StatusCode.FAILED_PRECONDITION: (422, "BAD_REQUEST"),
    grpc.StatusCode.UNAUTHENTICATED: (403, "FORBIDDEN"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "FORBIDDEN"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "BAD_REQUEST"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "NOT_IMPLEMENTED"),
    grpc.StatusCode.UNAVAILABLE: (503, "INTERNAL_SERVER_ERROR"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "INTERNAL_SERVER_ERROR"),
}


def from_rpc_error(e: grpc.RpcError) -> GatewayError:
    code = e.code() if isinstance(e, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (e.details() if isinstance(e, grpc.Call) else None) or str(e)
    status, name = _FROM_GRPC.get(code, (500, "INTERNAL_SERVER_ERROR"))
    return GatewayError(status, name, f"{code.name}: {details}")


def _body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "error": message}


async def on_gateway_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return JSONResponse(_body(exc.code, exc.message), status_code=exc.status)


async def on_rpc_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.RpcError)
    err = from_rpc_error(exc)
    return JSONResponse(_body(err.code, err.message), status_code=err.status)


async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """A malformed body or parameter: 400 naming each bad field (`body.name: ...`)."""
    assert isinstance(exc, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    return JSONResponse(_body("MALFORMED_REQUEST", "; ".join(problems)), status_code=400)


async def on_unknown_route(request: Request, _exc: Exception) -> JSONResponse:
    """Endpoints of the Lightly API that datapool does not serve: 404 naming the endpoint."""
    what = f"{request.method} {request.url.path} (this Lightly API endpoint is not served by datapool)"
    return JSONResponse(_body("NOT_FOUND", f"not supported by datapool: {what}"), status_code=404)
