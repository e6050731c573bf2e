"""An embedder server with an internal token answers only calls that carry it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from auth_calls import EMBEDDER, call, every_method, health_and_reflection_answer

from datapool.channels import make_channel
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.server import make_server

TOKEN = "embedder-test-internal-token"


@pytest.fixture(scope="module")
def address(backend: TorchCpuBackend) -> Iterator[str]:
    server = make_server(backend, "127.0.0.1:0", max_workers=4, internal_token=TOKEN)
    server.start()
    yield f"127.0.0.1:{server.port}"
    server.stop(0)


@pytest.mark.parametrize("method", every_method(EMBEDDER), ids=lambda m: m.name)
@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ((), "no internal token was sent: the embedder only answers the datapool scheduler"),
        ((("authorization", "Bearer embedder-test-wrong-token"),), "the internal token was refused"),
    ],
    ids=["no-token", "wrong-token"],
)
def test_every_embedder_method_refuses_a_call_without_the_internal_token(
    address: str, method: object, metadata: tuple[tuple[str, str], ...], says: str
) -> None:
    with make_channel(address) as channel:
        outcome = call(channel, method, metadata)  # type: ignore[arg-type]
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED, outcome
    assert says in outcome.details


@pytest.mark.parametrize("method", every_method(EMBEDDER), ids=lambda m: m.name)
def test_every_embedder_method_passes_the_check_with_the_internal_token(address: str, method: object) -> None:
    with make_channel(address) as channel:
        outcome = call(channel, method, (("authorization", f"Bearer {TOKEN}"),))  # type: ignore[arg-type]
    assert outcome.code != grpc.StatusCode.UNAUTHENTICATED, outcome


def test_embedder_health_and_reflection_answer_without_credentials(address: str) -> None:
    with make_channel(address) as channel:
        health_and_reflection_answer(channel, EMBEDDER)
