"""Shared fixtures: one model per test session, one folder of generated media, and a stub
of an in-process embedder server (one per test module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from embedder_media import Media, build_media

from datapool.channels import make_channel
from datapool.v1 import embedder_pb2_grpc
from services.embedder.backends import load_backend
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.server import make_server


@pytest.fixture(scope="session")
def backend() -> TorchCpuBackend:
    loaded = load_backend("torch-cpu")
    assert isinstance(loaded, TorchCpuBackend)
    return loaded


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return build_media(tmp_path_factory.mktemp("bucket"))


@pytest.fixture(scope="module")
def embedder_stub(backend: TorchCpuBackend) -> Iterator[embedder_pb2_grpc.EmbedderStub]:
    server = make_server(backend, "127.0.0.1:0", max_workers=8)
    server.start()
    with make_channel(f"127.0.0.1:{server.port}") as channel:
        yield embedder_pb2_grpc.EmbedderStub(channel)
    server.stop(0)
