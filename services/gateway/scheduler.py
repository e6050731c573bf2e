"""The gateway's gRPC connection to the scheduler; each call carries the caller's Lightly token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from datapool.channels import make_channel, retry_service_config
from datapool.tls import client_credentials
from datapool.v1 import scheduler_pb2_grpc

T = TypeVar("T")
CALL_TIMEOUT_S = 120.0
_IDEMPOTENT = [
    "GetDataset",
    "ListDatasets",
    "GetDatasource",
    "GetRun",
    "ListRuns",
    "GetRunReport",
    "ListTags",
    "ExportFilenames",
]


class Scheduler:
    def __init__(self, address: str) -> None:
        self.address = address
        # TLS when $DATAPOOL_CA_CERT names the scheduler's CA (`datapool up --tls-dir` sets it).
        self._channel = make_channel(
            address,
            retry_service_config("datapool.v1.Scheduler", _IDEMPOTENT),
            credentials=client_credentials(),
        )
        self.stub = scheduler_pb2_grpc.SchedulerStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    @staticmethod
    def _metadata(token: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),) if token else ()

    def call(self, fn: Callable[..., T], request: Any, token: str, timeout: float = CALL_TIMEOUT_S) -> T:
        """A unary call; grpc.RpcError propagates to the app's error handler."""
        return fn(request, timeout=timeout, metadata=self._metadata(token))

    def stream(self, fn: Callable[..., Iterator[T]], request: Any, token: str, timeout: float) -> Iterator[T]:
        yield from fn(request, timeout=timeout, metadata=self._metadata(token))
