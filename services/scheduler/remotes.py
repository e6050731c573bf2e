"""The gRPC boundary: embedder replicas and the selector as the run stages see them.

The stages talk to these small classes through the Protocols in `run.interfaces`, not
to stubs, so that deadlines, retries and replica choice live in one place, and every
failed call leaves here as a domain error (`EmbedderError`, `BackendRefused`,
`SelectorError`): no stage catches `grpc.RpcError`.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import grpc

from datapool.channels import ChannelTLS, make_channel, retry_service_config
from datapool.config import FrameSampling
from datapool.run_report import ModelInfo, PoolPoint
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc, selector_pb2, selector_pb2_grpc
from services.common.auth import with_token
from services.common.refusals import BACKEND_REFUSED_KEY
from services.scheduler.idle_watch import IdleWatch
from services.scheduler.run.interfaces import (
    BackendRefused,
    EmbedderError,
    ProcessedListing,
    RemoteError,
    SelectorError,
)

T = TypeVar("T")

# Deadlines, named after the call each bounds. Streams may take long (a long video on a
# slow CPU, a million processed files, a large pool); their deadlines only bound a hung peer.
GET_POOL_DEADLINE_S = 30.0
CLOSE_SESSION_DEADLINE_S = 30.0
EMBED_FILE_DEADLINE_S = 3600.0
LIST_PROCESSED_FILES_DEADLINE_S = 3600.0
LOAD_CACHED_EMBEDDINGS_DEADLINE_S = 3600.0
EXPORT_POOL_DEADLINE_S = 3600.0
SELECT_DEADLINE_S = 6 * 3600.0
# A commit may wait for the selection it commits.
COMMIT_DEADLINE_S = 6 * 3600.0
RENDER_FRAMES_DEADLINE_S = 1800.0
# How long a run waits for an embedder replica that is down (crashed, restarting) to come
# back before it fails naming the replica. The waiting is gRPC's own: the channel reconnects
# with exponential backoff (capped at 2 s, so a restarted replica is found soon) and calls
# carry wait_for_ready.
REPLICA_WAIT_S = 120.0
# An EmbedFile stream silent this long while awaited is a hung replica (idle_watch.py): its file
# moves to another one. Generous: a replica's first file may wait for its model to load.
EMBED_IDLE_S = 300.0
_RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

_SELECTOR_IDEMPOTENT = ["GetPool", "ListProcessedFiles", "ExportPool", "CloseSession", "GetRunCommit"]
_EMBEDDER_IDEMPOTENT = ["GetModelInfo", "RenderFrames"]


def sampling_pb(sampling: FrameSampling) -> embedder_pb2.FrameSampling:
    """The run's frame_sampling as the embedder request carries it (0: unset)."""
    return sampling.rule().to_pb()


class EmbedderReplica:
    def __init__(
        self,
        address: str,
        token: str | None = None,
        tls: ChannelTLS | None = None,
        idle_s: float = EMBED_IDLE_S,
    ) -> None:
        self.address = address
        self.idle_s = idle_s
        self._channel = make_channel(
            address,
            retry_service_config("datapool.v1.Embedder", _EMBEDDER_IDEMPOTENT),
            [*_RECONNECT_OPTIONS, *(tls.options if tls else ())],
            tls.credentials if tls else None,
        )
        # Kept current by gRPC, which also keeps reconnecting while we are subscribed.
        self.state = grpc.ChannelConnectivity.IDLE
        self.on_state_change: list[threading.Condition] = []
        self._channel.subscribe(self._state_changed, try_to_connect=True)
        # `token`: the internal token, on every call (the embedders refuse calls without it).
        self._stub = embedder_pb2_grpc.EmbedderStub(with_token(self._channel, token))

    def _state_changed(self, state: grpc.ChannelConnectivity) -> None:
        if state == grpc.ChannelConnectivity.IDLE and self.state == grpc.ChannelConnectivity.READY:
            # The embedder closed an idle or aged connection (servers' max_connection_age: 5 min).
            # A channel left IDLE connects again only for a call, and wait_ready makes none
            # while no replica is READY: every run failed "no embedder answered" from then on.
            grpc.channel_ready_future(self._channel)
        self.state = state
        for changed in self.on_state_change:
            with changed:
                changed.notify_all()

    @property
    def ready(self) -> bool:
        return self.state == grpc.ChannelConnectivity.READY

    def model_info(self, backend: str = "") -> ModelInfo:
        """The model, and the backend that would embed for a run asking for `backend`.

        Raises BackendRefused when this replica cannot run that backend.
        """
        request = embedder_pb2.GetModelInfoRequest(backend=backend)
        info = _embedder_call(
            lambda: self._stub.GetModelInfo(request, timeout=REPLICA_WAIT_S, wait_for_ready=True)
        )
        return ModelInfo(
            name=info.model,
            dim=info.dim,
            backend=info.backend,
            backend_reason=info.backend_reason,
            numbering=info.numbering,
        )

    def embed_file(
        self,
        source: common_pb2.StoreLocation,
        file: common_pb2.FileRef,
        sampling: FrameSampling,
        backend: str = "",
    ) -> Iterator[embedder_pb2.EmbedFileResponse]:
        request = embedder_pb2.EmbedFileRequest(
            source=source,
            file=file,
            dtype=common_pb2.FLOAT16,
            backend=backend,
            sampling=sampling_pb(sampling),
        )
        watch: IdleWatch | None = None
        try:
            stream = self._stub.EmbedFile(request, timeout=EMBED_FILE_DEADLINE_S, wait_for_ready=True)
            watch = IdleWatch(stream, self.idle_s)
            for event in watch.messages(stream):
                if event.WhichOneof("event") in ("done", "skipped"):
                    # The embedder ends the stream right after its last event; read that end before
                    # handing the event over, since callers stop at it: an abandoned stream is
                    # cancelled, and every finished file would count as CANCELLED on the embedder.
                    for _ in stream:
                        pass
                yield event
        except grpc.RpcError as e:
            if watch is not None and watch.hung:
                raise EmbedderError(
                    "DEADLINE_EXCEEDED",
                    f"sent nothing for {self.idle_s:g} s while embedding {file.path!r} "
                    "(hung? the scheduler's --embed-idle-s)",
                ) from None
            raise _embedder_error(e) from None

    def render_frames(self, request: embedder_pb2.RenderFramesRequest) -> list[str]:
        response = _embedder_call(
            lambda: self._stub.RenderFrames(request, timeout=RENDER_FRAMES_DEADLINE_S, wait_for_ready=True)
        )
        return list(response.written_keys)

    def close(self) -> None:
        self._channel.unsubscribe(self._state_changed)
        self._channel.close()
        self._state_changed(grpc.ChannelConnectivity.SHUTDOWN)


class EmbedderPool:
    """Round-robin over replicas; a file that fails on one replica moves to the next.

    `streams`: files embedded at once, 2 per address unless given. One address may stand for
    many pods (`dns:///` of a headless Service, balanced per call), so a deployment states it.
    """

    def __init__(
        self,
        addresses: Iterable[str],
        token: str | None = None,
        streams: int | None = None,
        tls: ChannelTLS | None = None,
        idle_s: float | None = None,
    ) -> None:
        self.replicas = [EmbedderReplica(a, token, tls, idle_s or EMBED_IDLE_S) for a in addresses]
        if not self.replicas:
            raise ValueError("at least one embedder address is required")
        self.streams = streams or max(2, 2 * len(self.replicas))
        self._next = itertools.cycle(range(len(self.replicas)))
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._closed = False
        for r in self.replicas:
            r.on_state_change.append(self._changed)

    def pick(self, avoid: set[str] | None = None) -> EmbedderReplica:
        with self._lock:
            for _ in range(len(self.replicas)):
                replica = self.replicas[next(self._next)]
                if not avoid or replica.address not in avoid:
                    return replica
            return self.replicas[next(self._next)]

    def wait_ready(
        self, avoid: set[str] | None = None, timeout: float = REPLICA_WAIT_S
    ) -> EmbedderReplica | None:
        """The next replica in turn that is connected, preferring those not in `avoid`; waits up
        to `timeout` for one to come back when none is. None when none did, or on close."""
        deadline = time.monotonic() + timeout
        with self._lock:
            start = next(self._next)
        order = self.replicas[start:] + self.replicas[:start]
        with self._changed:
            while not self._closed:
                ready = [r for r in order if r.ready]
                fresh = [r for r in ready if not avoid or r.address not in avoid]
                if ready:
                    return (fresh or ready)[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
        return None

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for r in self.replicas:
            r.close()


class SelectorClient:
    def __init__(self, address: str, token: str | None = None, tls: ChannelTLS | None = None) -> None:
        self.address = address
        self._channel = make_channel(
            address,
            retry_service_config("datapool.v1.Selector", _SELECTOR_IDEMPOTENT),
            tls.options if tls else (),
            tls.credentials if tls else None,
        )
        # `token`: the internal token, on every call (the selector refuses calls without it).
        self._stub = selector_pb2_grpc.SelectorStub(with_token(self._channel, token))

    def get_pool(self, pool: common_pb2.StoreLocation) -> selector_pb2.PoolSummary:
        request = selector_pb2.GetPoolRequest(pool=pool)
        return _selector_call(lambda: self._stub.GetPool(request, timeout=GET_POOL_DEADLINE_S))

    def run_commit(self, pool: common_pb2.StoreLocation, run_id: str) -> selector_pb2.RunCommit:
        request = selector_pb2.GetRunCommitRequest(pool=pool, run_id=run_id)
        # Asked right after a Commit call failed, often because the selector died: waiting for
        # it to come back (its supervisor restarts it) tells a landed commit from a lost one.
        return _selector_call(
            lambda: self._stub.GetRunCommit(request, timeout=GET_POOL_DEADLINE_S, wait_for_ready=True)
        )

    def processed_files(self, pool: common_pb2.StoreLocation) -> ProcessedListing:
        """The stream's first message (the pool version) is read here; the files as they are pulled."""
        call = self._stub.ListProcessedFiles(
            selector_pb2.GetPoolRequest(pool=pool), timeout=LIST_PROCESSED_FILES_DEADLINE_S
        )
        first = _selector_call(lambda: next(call, None))
        if first is None or not first.HasField("version"):
            call.cancel()
            raise SelectorError(
                "FAILED_PRECONDITION",
                f"the selector at {self.address} named no pool version with the processed files: "
                "it is older than this scheduler; run both from the same release",
            )

        def files() -> Iterator[common_pb2.FileRef]:
            try:
                yield from first.files
                for chunk in call:
                    yield from chunk.files
            except grpc.RpcError as e:
                raise _remote_error(SelectorError, e) from None

        return ProcessedListing(PoolPoint(version=first.version, frames=first.frame_count), files())

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        return _selector_call(lambda: self._stub.Select(requests, timeout=SELECT_DEADLINE_S))

    def load_cached(
        self, requests: Iterator[selector_pb2.LoadCachedRequest]
    ) -> Iterator[selector_pb2.CachedFiles]:
        try:
            yield from self._stub.LoadCachedEmbeddings(requests, timeout=LOAD_CACHED_EMBEDDINGS_DEADLINE_S)
        except grpc.RpcError as e:
            raise _remote_error(SelectorError, e) from None

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        # Not retried by the channel: a retried commit is resolved by the selector
        # through the commit id, and the pipeline decides whether to call again.
        return _selector_call(lambda: self._stub.Commit(request, timeout=COMMIT_DEADLINE_S))

    def close_session(self, session_id: str) -> None:
        # Sessions expire on their own; closing is only a courtesy.
        with contextlib.suppress(grpc.RpcError):
            self._stub.CloseSession(
                selector_pb2.CloseSessionRequest(session_id=session_id), timeout=CLOSE_SESSION_DEADLINE_S
            )

    # Not part of a run: the servicer's tag calls use it, and their errors travel back to the caller.
    def export_pool(
        self, pool: common_pb2.StoreLocation, tag_name: str, with_vectors: bool
    ) -> Iterator[selector_pb2.PoolEntries]:
        request = selector_pb2.ExportPoolRequest(pool=pool, tag_name=tag_name, with_vectors=with_vectors)
        yield from self._stub.ExportPool(request, timeout=EXPORT_POOL_DEADLINE_S)

    def close(self) -> None:
        self._channel.close()


def _remote_error(kind: type[RemoteError], e: grpc.RpcError) -> RemoteError:
    if isinstance(e, grpc.Call):
        return kind(e.code().name, e.details() or "")
    return kind("UNKNOWN", str(e))


def _embedder_error(e: grpc.RpcError) -> RemoteError:
    """BackendRefused when the embedder marked the error so (services.common.refusals)."""
    if isinstance(e, grpc.Call):
        trailing = e.trailing_metadata() or ()
        if any(key == BACKEND_REFUSED_KEY for key, _ in trailing):
            return _remote_error(BackendRefused, e)
    return _remote_error(EmbedderError, e)


def _embedder_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except grpc.RpcError as e:
        raise _embedder_error(e) from None


def _selector_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except grpc.RpcError as e:
        raise _remote_error(SelectorError, e) from None
