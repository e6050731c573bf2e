"""What the stages need from the embedders and the selector, and the errors they raise.

`services.scheduler.remotes` implements these over gRPC and turns every failed call into
one of the errors below, so no stage catches `grpc.RpcError` and a test can drive the
stages with plain fakes. Messages still travel as the protobuf data classes (no gRPC in
them): they are what the selector's stream takes item by item.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from datapool.config import FrameSampling
from datapool.run_report import ModelInfo, PoolPoint
from datapool.v1 import common_pb2, embedder_pb2, selector_pb2

__all__ = [
    "BackendRefused",
    "Embedder",
    "EmbedderError",
    "Embedders",
    "ModelInfo",
    "ProcessedListing",
    "RemoteError",
    "Selector",
    "SelectorError",
]


class RemoteError(Exception):
    """A call to another service failed; `code` is its status name (UNAVAILABLE, ...)."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class EmbedderError(RemoteError):
    """An embedder replica failed a call: the file may still embed on another replica."""


class BackendRefused(EmbedderError):
    """The embedder cannot run the backend the run asks for: no other replica will either."""


class SelectorError(RemoteError):
    """The selector failed a call."""


@dataclass(frozen=True)
class ProcessedListing:
    """The pool a run starts from (the newest manifest, looked up once) and the files that
    manifest names as processed, in (path, size, etag) order; `files` raises SelectorError."""

    pool: PoolPoint
    files: Iterator[common_pb2.FileRef]


class Embedder(Protocol):
    """One embedder replica."""

    @property
    def address(self) -> str: ...

    def model_info(self, backend: str) -> ModelInfo:
        """Raises BackendRefused when this replica cannot run `backend`."""
        ...

    def embed_file(
        self,
        source: common_pb2.StoreLocation,
        file: common_pb2.FileRef,
        sampling: FrameSampling,
        backend: str,
    ) -> Iterator[embedder_pb2.EmbedFileResponse]: ...

    def render_frames(self, request: embedder_pb2.RenderFramesRequest) -> list[str]: ...


class Embedders(Protocol):
    """The replicas, and how many files a run embeds at once over them."""

    @property
    def streams(self) -> int: ...

    @property
    def replicas(self) -> Sequence[Embedder]: ...

    def wait_ready(self, avoid: set[str] | None, timeout: float) -> Embedder | None:
        """A connected replica, preferring those not in `avoid`; None after `timeout`."""
        ...


class Selector(Protocol):
    def get_pool(self, pool: common_pb2.StoreLocation) -> selector_pb2.PoolSummary: ...

    def run_commit(self, pool: common_pb2.StoreLocation, run_id: str) -> selector_pb2.RunCommit:
        """The commit run `run_id` made in the pool (`found` false when none names it)."""
        ...

    def processed_files(self, pool: common_pb2.StoreLocation) -> ProcessedListing: ...

    def load_cached(
        self, requests: Iterator[selector_pb2.LoadCachedRequest]
    ) -> Iterator[selector_pb2.CachedFiles]: ...

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse: ...

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse: ...

    def close_session(self, session_id: str) -> None: ...
