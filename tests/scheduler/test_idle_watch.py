"""An embedder that goes silent mid-file is cancelled after --embed-idle-s and reported as an
EmbedderError (so the file moves to another replica); a slow consumer is not a hung embedder."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from embed_only import EmbedOnly

from datapool.config import FrameSampling
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.common.server import ServiceServer
from services.scheduler.remotes import EmbedderReplica
from services.scheduler.run.interfaces import EmbedderError


class Silent(EmbedOnly):
    """Sends `events` info messages, then nothing until the caller gives up when `hang`."""

    def __init__(self, events: int, hang: bool) -> None:
        self.events, self.hang = events, hang
        self.cancelled = threading.Event()

    def EmbedFile(
        self, request: embedder_pb2.EmbedFileRequest, context: grpc.ServicerContext
    ) -> Iterator[embedder_pb2.EmbedFileResponse]:
        context.add_callback(self.cancelled.set)
        for _ in range(self.events):
            yield embedder_pb2.EmbedFileResponse(info=embedder_pb2.MediaInfo(kind="video"))
        while self.hang and context.is_active():
            time.sleep(0.05)


def _embed(servicer: Silent, idle_s: float, consume_s: float = 0.0) -> int:
    def register(server: grpc.Server) -> None:
        embedder_pb2_grpc.add_EmbedderServicer_to_server(servicer, server)

    server = ServiceServer("embedder", "127.0.0.1:0", register, [])
    server.start()
    replica = EmbedderReplica(f"127.0.0.1:{server.port}", idle_s=idle_s)
    try:
        seen = 0
        for _ in replica.embed_file(
            local_location("/tmp"), common_pb2.FileRef(path="a.mp4"), FrameSampling()
        ):
            seen += 1
            time.sleep(consume_s)
        return seen
    finally:
        replica.close()
        server.stop(0)


def test_a_replica_silent_for_the_idle_limit_is_cancelled_and_named_hung() -> None:
    servicer = Silent(events=1, hang=True)
    t = time.monotonic()
    with pytest.raises(
        EmbedderError, match=r"DEADLINE_EXCEEDED: sent nothing for 0.5 s while embedding 'a.mp4'"
    ):
        _embed(servicer, idle_s=0.5)
    assert time.monotonic() - t < 10
    assert servicer.cancelled.wait(5)  # the embedder saw the call end: it stops working on it


def test_a_slow_consumer_does_not_make_a_healthy_replica_look_hung() -> None:
    assert _embed(Silent(events=3, hang=False), idle_s=0.5, consume_s=0.8) == 3
