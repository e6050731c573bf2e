"""A long selection does not hold up the selector's other calls, and ends soon after its
Select call is cancelled.

A real selector process gets 200,000 uniform random rows (nothing for the bounds to
prune) and asks for 100,000 picks: minutes of work. While it runs, GetPool and
ListProcessedFiles must answer promptly; once the client cancels the Select, the
selection must give up (its session id is free again) within about a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from long_selection import local_location, long_select_requests, long_select_spec
from selector_helpers import selector_process

from datapool.v1 import selector_pb2, selector_pb2_grpc
from services.common.auth import with_token

# Generous for a busy 2-core CI machine; an idle one answers in a few milliseconds.
MAX_LATENCY = 0.5
# From cancelling the Select to its session id being free again.
MAX_CANCEL = 1.5


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[selector_pb2_grpc.SelectorStub]:
    with selector_process(tmp_path) as selector, grpc.insecure_channel(selector.address) as channel:
        yield selector_pb2_grpc.SelectorStub(with_token(channel, selector.token))


def _timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_get_pool_answers_during_a_long_selection_and_cancel_stops_it(
    stub: selector_pb2_grpc.SelectorStub, tmp_path: Path
) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    sent = threading.Event()
    select = stub.Select.future(long_select_requests(pool, sent), timeout=600)
    assert sent.wait(timeout=120)
    time.sleep(0.5)  # the last file is measured; the greedy loop is running
    request = selector_pb2.GetPoolRequest(pool=local_location(pool))
    latencies = [_timed(lambda: stub.GetPool(request, timeout=10)) for _ in range(10)]
    latencies += [_timed(lambda: list(stub.ListProcessedFiles(request, timeout=10))) for _ in range(5)]
    assert not select.done(), "the selection ended before GetPool was measured"
    assert max(latencies) < MAX_LATENCY, latencies

    cancelled = time.monotonic()
    select.cancel()
    # The session id stays reserved until the selection has given up.
    while True:
        try:
            stub.Select(iter([long_select_spec(pool)]), timeout=10)
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e
            assert time.monotonic() - cancelled < MAX_CANCEL, "the cancelled selection is still running"
            time.sleep(0.05)
    assert time.monotonic() - cancelled < MAX_CANCEL
