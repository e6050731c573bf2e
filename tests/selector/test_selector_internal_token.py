"""The selector process answers only calls that carry the scheduler's internal token."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from auth_calls import SELECTOR, call, every_method, health_and_reflection_answer
from selector_helpers import selector_process

from datapool.channels import make_channel


@pytest.fixture(scope="module")
def selector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(address, token) of a real `python -m services.selector` given its token by file."""
    with selector_process(tmp_path_factory.mktemp("selector"), log_level="INFO") as selector:
        yield selector.address, selector.token


@pytest.mark.parametrize("method", every_method(SELECTOR), ids=lambda m: m.name)
@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ((), "no internal token was sent"),
        ((("authorization", "Bearer not-the-token-at-all"),), "the internal token was refused"),
    ],
    ids=["no-token", "wrong-token"],
)
def test_every_selector_method_refuses_a_call_without_the_internal_token(
    selector: tuple[str, str], method: object, metadata: tuple[tuple[str, str], ...], says: str
) -> None:
    address, _ = selector
    with make_channel(address) as channel:
        outcome = call(channel, method, metadata)  # type: ignore[arg-type]
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED, outcome
    assert says in outcome.details


@pytest.mark.parametrize("method", every_method(SELECTOR), ids=lambda m: m.name)
def test_every_selector_method_passes_the_check_with_the_internal_token(
    selector: tuple[str, str], method: object
) -> None:
    address, token = selector
    with make_channel(address) as channel:
        outcome = call(channel, method, (("authorization", f"Bearer {token}"),))  # type: ignore[arg-type]
    # An empty request is refused for what it lacks, never for its credentials.
    assert outcome.code != grpc.StatusCode.UNAUTHENTICATED, outcome


def test_selector_health_and_reflection_answer_without_credentials(selector: tuple[str, str]) -> None:
    with make_channel(selector[0]) as channel:
        health_and_reflection_answer(channel, SELECTOR)
