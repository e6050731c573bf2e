"""The one error interceptor: storage errors and stray OSErrors reach callers as the status of
their kind with the path named, never as UNKNOWN "Exception calling application"."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator

import grpc
import pytest

from datapool.channels import make_channel
from datapool.errors import InvalidArgument
from datapool.storage import StoreAccessDenied, StoreFull
from services.common.server import ServiceServer
from services.common.status import MAX_DETAILS_CHARS

RAISES: dict[str, Exception] = {
    "enospc": OSError(errno.ENOSPC, "No space left on device", "/pool/frames/r/a.png"),
    "eacces": PermissionError(errno.EACCES, "Permission denied", "/pool/x"),
    "enoent": FileNotFoundError(errno.ENOENT, "No such file or directory", "/in/gone.mp4"),
    "store-full": StoreFull(
        "disk full writing /pool/.datapool/data/c/entries.json (No space left on device)"
    ),
    "huge-message": InvalidArgument("worker_config.model_backend: unknown model backend " + "x" * 100_000),
    "store-denied": StoreAccessDenied(
        "access denied: missing permission to write /pool/a", permission="write", path="/pool/a"
    ),
}


@pytest.fixture(scope="module")
def call() -> Iterator[Callable[[str], grpc.RpcError]]:
    def raising(request: bytes, context: grpc.ServicerContext) -> bytes:
        raise RAISES[request.decode()]

    handler = grpc.method_handlers_generic_handler(
        "test.Raises", {"Raise": grpc.unary_unary_rpc_method_handler(raising)}
    )
    server = ServiceServer("test", "127.0.0.1:0", lambda s: s.add_generic_rpc_handlers((handler,)), [])
    server.start()
    with make_channel(f"127.0.0.1:{server.port}") as channel:
        method: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/test.Raises/Raise")

        def invoke(name: str) -> grpc.RpcError:
            with pytest.raises(grpc.RpcError) as caught:
                method(name.encode(), timeout=10)
            return caught.value

        yield invoke
    server.stop(0)


@pytest.mark.parametrize(
    ("name", "code", "details"),
    [
        (
            "enospc",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "disk full: /pool/frames/r/a.png (No space left on device)",
        ),
        ("eacces", grpc.StatusCode.PERMISSION_DENIED, "Permission denied: /pool/x"),
        ("enoent", grpc.StatusCode.NOT_FOUND, "No such file or directory: /in/gone.mp4"),
        (
            "store-full",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "disk full writing /pool/.datapool/data/c/entries.json",
        ),
        ("store-denied", grpc.StatusCode.PERMISSION_DENIED, "missing permission to write /pool/a"),
    ],
)
def test_storage_failures_get_the_status_of_their_kind(
    call: Callable[[str], grpc.RpcError], name: str, code: grpc.StatusCode, details: str
) -> None:
    error = call(name)
    assert isinstance(error, grpc.Call)
    assert error.code() == code
    assert details in (error.details() or "")
    assert "Exception calling application" not in (error.details() or "")


def test_a_huge_message_is_cut_so_the_caller_still_gets_the_status(
    call: Callable[[str], grpc.RpcError],
) -> None:
    error = call("huge-message")
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert details.startswith("worker_config.model_backend: unknown model backend xxx")
    assert details.endswith("... (cut; 100051 characters in all)")
    assert len(details) < MAX_DETAILS_CHARS + 100
