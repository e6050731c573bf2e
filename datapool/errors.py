"""Domain errors. Services raise these; one interceptor maps them to gRPC status codes."""

from __future__ import annotations

from typing import Any

import grpc


class DatapoolError(Exception):
    """An error a person can act on; the message names the bad field, file or key.

    A subclass names its status code as a class keyword: `class NotFound(DatapoolError,
    code=grpc.StatusCode.NOT_FOUND)`; one without inherits its base's.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init_subclass__(cls, code: grpc.StatusCode | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code


class InvalidArgument(DatapoolError, code=grpc.StatusCode.INVALID_ARGUMENT): ...


class NotFound(DatapoolError, code=grpc.StatusCode.NOT_FOUND): ...


class AlreadyExists(DatapoolError, code=grpc.StatusCode.ALREADY_EXISTS): ...


class FailedPrecondition(DatapoolError, code=grpc.StatusCode.FAILED_PRECONDITION): ...


class Unauthenticated(DatapoolError, code=grpc.StatusCode.UNAUTHENTICATED): ...


class Unavailable(DatapoolError, code=grpc.StatusCode.UNAVAILABLE): ...


class PermissionDenied(DatapoolError, code=grpc.StatusCode.PERMISSION_DENIED): ...


class ResourceExhausted(DatapoolError, code=grpc.StatusCode.RESOURCE_EXHAUSTED): ...


def reworded(error: DatapoolError, message: str) -> DatapoolError:
    """`message` (context around `error`) with `error`'s status code: a full disk stays
    RESOURCE_EXHAUSTED however many layers add what they were doing."""
    out = DatapoolError(message)
    out.code = error.code
    return out
