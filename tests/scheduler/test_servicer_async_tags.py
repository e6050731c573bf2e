"""ListTags' calls for one pool share the selector's answers (`AsyncPoolTags`): one GetPool in
flight per pool, the calls that arrive meanwhile share the next one, sent when it returns, so each
still gets an answer read after it arrived. The selector is a real gRPC server that answers when
the test lets it, with the pool's version counting its GetPool calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from run_apart import run_apart

from datapool.v1 import common_pb2, selector_pb2
from services.scheduler.async_tags import AsyncPoolTags
from services.scheduler.run.interfaces import SelectorError


class CountingSelector:
    """GetPool answers version N for its Nth call, each held until the test releases one."""

    def __init__(self) -> None:
        self.calls = 0
        self.releases = threading.Semaphore(0)
        self._lock = threading.Lock()

    def get_pool(self, request: selector_pb2.GetPoolRequest, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.calls += 1
            version = self.calls
        if not self.releases.acquire(timeout=20):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "never released")
        if request.pool.local.root.endswith("refused"):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no such pool")
        return selector_pb2.PoolSummary(version=version, frame_count=version)


@pytest.fixture
def selector() -> Iterator[tuple[CountingSelector, str]]:
    counting = CountingSelector()
    method = grpc.unary_unary_rpc_method_handler(
        counting.get_pool,
        request_deserializer=selector_pb2.GetPoolRequest.FromString,
        response_serializer=selector_pb2.PoolSummary.SerializeToString,
    )
    server = grpc.server(ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("datapool.v1.Selector", {"GetPool": method}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield counting, f"127.0.0.1:{port}"
    finally:
        counting.releases.release(100)
        server.stop(None)


def _pool(root: Path) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(root)))


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_calls_that_arrive_during_a_getpool_share_the_next_one_and_never_an_older_answer(
    selector: tuple[CountingSelector, str], tmp_path: Path
) -> None:
    counting, address = selector

    async def scenario() -> list[int]:
        tags = AsyncPoolTags(address)
        pool = _pool(tmp_path / "pool")
        try:
            first = asyncio.ensure_future(tags.all(pool))
            await _until(lambda: counting.calls == 1)
            # Arrived while GetPool 1 is in flight: they must not get its answer (a tag committed
            # after it was read would be missing), and they share GetPool 2.
            later = [asyncio.ensure_future(tags.all(pool)) for _ in range(5)]
            await asyncio.sleep(0.2)
            assert counting.calls == 1
            counting.releases.release()
            await _until(lambda: counting.calls == 2)
            counting.releases.release()
            answers = await asyncio.gather(first, *later)
            # Tag lists end with "initial-tag", whose frame count is the version here.
            return [a[-1].frame_count for a in answers]
        finally:
            await tags.close()

    assert run_apart(scenario) == [1, 2, 2, 2, 2, 2]
    assert counting.calls == 2


def test_a_refusal_reaches_every_waiting_call_and_a_caller_that_leaves_does_not_cancel_the_others(
    selector: tuple[CountingSelector, str], tmp_path: Path
) -> None:
    counting, address = selector

    async def scenario() -> None:
        tags = AsyncPoolTags(address)
        refused = _pool(tmp_path / "refused")
        try:
            calls = [asyncio.ensure_future(tags.all(refused)) for _ in range(3)]
            await _until(lambda: counting.calls == 1)
            calls[0].cancel()  # its client went away
            counting.releases.release()
            for call in calls[1:]:
                with pytest.raises(SelectorError) as e:
                    await call
                assert e.value.code == "FAILED_PRECONDITION"
            # A pool of its own: its own GetPool, in flight at the same time as nothing else.
            counting.releases.release()
            other = await tags.all(_pool(tmp_path / "other"))
            assert other[-1].frame_count == 2
        finally:
            await tags.close()

    run_apart(scenario)
    assert counting.calls == 2


def test_the_last_answer_serves_while_no_newer_commit_is_recorded_and_until_it_expires(
    selector: tuple[CountingSelector, str], tmp_path: Path
) -> None:
    counting, address = selector
    counting.releases.release(100)  # every GetPool answers at once

    async def scenario() -> list[int]:
        tags = AsyncPoolTags(address, cache_s=0.5)
        pool = _pool(tmp_path / "pool")
        try:
            seen = [(await tags.all(pool, recorded=0))[-1].frame_count]  # GetPool 1: version 1
            seen.append((await tags.all(pool, recorded=1))[-1].frame_count)  # cached, as new as recorded
            assert counting.calls == 1
            # A run committed version 2 and recorded it: the cached version 1 is too old.
            seen.append((await tags.all(pool, recorded=2))[-1].frame_count)  # GetPool 2
            seen.append((await tags.all(pool, recorded=2))[-1].frame_count)  # cached
            assert counting.calls == 2
            await asyncio.sleep(0.6)  # expired: a change the store never heard of shows
            seen.append((await tags.all(pool, recorded=2))[-1].frame_count)  # GetPool 3
            seen.append((await tags.all(pool))[-1].frame_count)  # no recorded version: GetPool 4
            return seen
        finally:
            await tags.close()

    assert run_apart(scenario) == [1, 1, 2, 2, 3, 4]
    assert counting.calls == 4
