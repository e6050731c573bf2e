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
import numpy as np
import pytest
from selector_helpers import selector_process

from datapool.v1 import common_pb2, selector_pb2, selector_pb2_grpc
from services.common.auth import with_token

DIM = 128
FILES = 20
ROWS_PER_FILE = 10_000
# Generous for a busy 2-core CI machine; an idle one answers in a few milliseconds.
MAX_LATENCY = 0.5
# From cancelling the Select to its session id being free again.
MAX_CANCEL = 1.5


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[selector_pb2_grpc.SelectorStub]:
    with selector_process(tmp_path) as selector, grpc.insecure_channel(selector.address) as channel:
        yield selector_pb2_grpc.SelectorStub(with_token(channel, selector.token))


def _location(root: Path) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(root)))


def _spec(pool: Path) -> selector_pb2.SelectRequest:
    spec = selector_pb2.SelectionSpec(
        session_id="long",
        pool=_location(pool),
        run_id="r1",
        n_samples=100_000,
        proportion_samples=-1,
        model="m",
    )
    return selector_pb2.SelectRequest(spec=spec)


def _requests(pool: Path, sent: threading.Event) -> Iterator[selector_pb2.SelectRequest]:
    yield _spec(pool)
    rng = np.random.default_rng(7)
    for f in range(FILES):
        file = common_pb2.FileRef(path=f"v{f:02d}.mp4", size=100, etag="e")
        rows = rng.standard_normal((ROWS_PER_FILE, DIM), dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        vectors = common_pb2.VectorBatch(
            frame_indices=range(ROWS_PER_FILE),
            vectors=rows.astype("<f2").tobytes(),
            dim=DIM,
            dtype=common_pb2.FLOAT16,
        )
        yield selector_pb2.SelectRequest(batch=selector_pb2.CandidateBatch(file=file, vectors=vectors))
        done = selector_pb2.FileComplete(file=file, frame_count=ROWS_PER_FILE, kind="video")
        yield selector_pb2.SelectRequest(file_complete=done)
    sent.set()


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
    select = stub.Select.future(_requests(pool, sent), timeout=600)
    assert sent.wait(timeout=120)
    time.sleep(0.5)  # the last file is measured; the greedy loop is running
    request = selector_pb2.GetPoolRequest(pool=_location(pool))
    latencies = [_timed(lambda: stub.GetPool(request, timeout=10)) for _ in range(10)]
    latencies += [_timed(lambda: list(stub.ListProcessedFiles(request, timeout=10))) for _ in range(5)]
    assert not select.done(), "the selection ended before GetPool was measured"
    assert max(latencies) < MAX_LATENCY, latencies

    cancelled = time.monotonic()
    select.cancel()
    # The session id stays reserved until the selection has given up.
    while True:
        try:
            stub.Select(iter([_spec(pool)]), timeout=10)
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e
            assert time.monotonic() - cancelled < MAX_CANCEL, "the cancelled selection is still running"
            time.sleep(0.05)
    assert time.monotonic() - cancelled < MAX_CANCEL
