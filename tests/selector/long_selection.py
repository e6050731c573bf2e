"""A Select that keeps a real selector busy for minutes: 200,000 uniform random rows (nothing
for the bounds to prune) in 20 files, and 100,000 picks asked for. Shared by
test_select_responsiveness.py and bench/bench_select_priority.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from datapool.v1 import common_pb2, selector_pb2

DIM = 128
FILES = 20
ROWS_PER_FILE = 10_000
SESSION_ID = "long"


def local_location(root: Path) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(root)))


def long_select_spec(pool: Path) -> selector_pb2.SelectRequest:
    spec = selector_pb2.SelectionSpec(
        session_id=SESSION_ID,
        pool=local_location(pool),
        run_id="r1",
        n_samples=100_000,
        proportion_samples=-1,
        model="m",
    )
    return selector_pb2.SelectRequest(spec=spec)


def long_select_requests(pool: Path, sent: threading.Event) -> Iterator[selector_pb2.SelectRequest]:
    """The spec, then every file's rows (float16) and its completion; `sent` is set after the last."""
    yield long_select_spec(pool)
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
