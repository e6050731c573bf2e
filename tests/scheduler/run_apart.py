"""Runs an asyncio scenario on a thread of its own, for tests of the asyncio scheduler."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_apart(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(scenario())` on a thread of its own: the test session's main thread may already
    run an event loop (playwright's sync API does), where asyncio.run refuses to start."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(scenario()))
        except BaseException as e:
            failure.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if failure:
        raise failure[0]
    assert result, "the scenario did not finish in 60 s"
    return result[0]
