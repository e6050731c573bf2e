"""The gRPC boundary: failed calls leave `remotes` as domain errors, and the embedder's
backend-refused detail (not the status code alone) makes one a BackendRefused."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from embed_only import EmbedOnly

from datapool.config import FrameSampling
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.common.refusals import BACKEND_REFUSED_KEY
from services.common.server import ServiceServer
from services.scheduler.remotes import EmbedderReplica, SelectorClient
from services.scheduler.run.interfaces import BackendRefused, EmbedderError, SelectorError


class Refusing(EmbedOnly):
    """Answers every EmbedFile FAILED_PRECONDITION, marked as a backend refusal when `marked`."""

    def __init__(self, marked: bool) -> None:
        self.marked = marked

    def EmbedFile(
        self, request: embedder_pb2.EmbedFileRequest, context: grpc.ServicerContext
    ) -> Iterator[embedder_pb2.EmbedFileResponse]:
        if self.marked:
            context.set_trailing_metadata(((BACKEND_REFUSED_KEY, "1"),))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "model backend 'x' cannot run here")
        yield embedder_pb2.EmbedFileResponse()


def _embed_once(marked: bool) -> None:
    def register(server: grpc.Server) -> None:
        embedder_pb2_grpc.add_EmbedderServicer_to_server(Refusing(marked), server)

    server = ServiceServer("embedder", "127.0.0.1:0", register, [])
    server.start()
    replica = EmbedderReplica(f"127.0.0.1:{server.port}")
    try:
        file = common_pb2.FileRef(path="a.mp4", size=1)
        list(replica.embed_file(local_location("/tmp"), file, FrameSampling(), "x"))
    finally:
        replica.close()
        server.stop(0)


def test_an_embedder_refusal_marked_as_such_is_a_backend_refusal() -> None:
    with pytest.raises(BackendRefused) as refused:
        _embed_once(marked=True)
    assert str(refused.value) == "FAILED_PRECONDITION: model backend 'x' cannot run here"


def test_the_same_code_without_the_mark_is_an_embedder_error_to_retry_elsewhere() -> None:
    with pytest.raises(EmbedderError) as failed:
        _embed_once(marked=False)
    assert not isinstance(failed.value, BackendRefused)
    assert failed.value.code == "FAILED_PRECONDITION"


def test_a_selector_that_is_down_is_a_selector_error() -> None:
    selector = SelectorClient("127.0.0.1:1")
    try:
        with pytest.raises(SelectorError) as failed:
            selector.get_pool(local_location("/tmp/pool"))
    finally:
        selector.close()
    assert failed.value.code == "UNAVAILABLE"
