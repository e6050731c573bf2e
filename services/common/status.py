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
from services.common.wrapping_interceptor import Behaviour, WrappingInterceptor

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


def abort_details(e: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and details a domain error or stray OSError is answered with."""
    if isinstance(e, DatapoolError):
        text = str(e)
        if len(text) > MAX_DETAILS_CHARS:
            text = f"{text[:MAX_DETAILS_CHARS]}... (cut; {len(text)} characters in all)"
        return e.code, text
    assert isinstance(e, OSError)
    where = f": {e.filename}" if e.filename else ""
    what = "disk full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or type(e).__name__)
    return _ERRNO_CODES.get(e.errno or 0, grpc.StatusCode.INTERNAL), f"{what}{where} ({e.strerror})"


def _abort(context: grpc.ServicerContext, e: Exception) -> None:
    context.abort(*abort_details(e))


def _wrap_unary(_method: str, fn: Behaviour) -> Behaviour:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request, context)
        except (DatapoolError, OSError) as e:
            _abort(context, e)

    return wrapped


def _wrap_stream(_method: str, fn: Callable[[Any, grpc.ServicerContext], Iterator[Any]]) -> Behaviour:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from fn(request, context)
        except (DatapoolError, OSError) as e:
            _abort(context, e)

    return wrapped


class DomainErrorInterceptor(WrappingInterceptor):
    """Maps domain errors and stray OSErrors to status codes; anything else stays UNKNOWN."""

    def __init__(self) -> None:
        super().__init__(_wrap_unary, _wrap_stream)
