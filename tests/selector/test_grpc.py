from __future__ import annotations

import math
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from selector_helpers import clustered_unit_vectors, selector_process

from datapool.internal_token import read_token_file
from datapool.v1 import common_pb2, selector_pb2, selector_pb2_grpc
from services.common.auth import with_token

DIM = 1280
TIMEOUT = 10.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with selector_process(tmp_path) as selector:
        yield selector.address, selector.process


def _location(root: Path) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(root)))


def _file(path: str) -> common_pb2.FileRef:
    return common_pb2.FileRef(path=path, size=100, etag="e")


def _batch(
    path: str, start: int, rows: np.ndarray, dtype: common_pb2.VectorDType.ValueType
) -> selector_pb2.SelectRequest:
    packed = rows.astype("<f2" if dtype == common_pb2.FLOAT16 else "<f4").tobytes()
    vectors = common_pb2.VectorBatch(
        frame_indices=range(start, start + len(rows)), vectors=packed, dim=rows.shape[1], dtype=dtype
    )
    return selector_pb2.SelectRequest(batch=selector_pb2.CandidateBatch(file=_file(path), vectors=vectors))


def _complete(path: str, frame_count: int) -> selector_pb2.SelectRequest:
    done = selector_pb2.FileComplete(file=_file(path), frame_count=frame_count, kind="video")
    return selector_pb2.SelectRequest(file_complete=done)


def test_select_commit_and_read_back(server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    address, process = server
    pool = tmp_path / "pool"
    pool.mkdir()
    vectors = clustered_unit_vectors(seed=30, clusters=5, per_cluster=4, dim=DIM)
    spec = selector_pb2.SelectionSpec(
        session_id="g1", pool=_location(pool), run_id="r1", n_samples=3, proportion_samples=-1, model="m"
    )
    requests = [
        selector_pb2.SelectRequest(spec=spec),
        _batch("a.mp4", 0, vectors[:6], common_pb2.VECTOR_DTYPE_UNSPECIFIED),
        _batch("dropped.mp4", 0, vectors[:2], common_pb2.FLOAT32),
        _batch("b.avi", 0, vectors[10:15], common_pb2.FLOAT16),
        _batch("a.mp4", 6, vectors[6:10], common_pb2.FLOAT32),
        selector_pb2.SelectRequest(file_dropped=selector_pb2.FileDropped(file=_file("dropped.mp4"))),
        _complete("a.mp4", 10),
        _complete("b.avi", 5),
    ]
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="datapool.v1.Selector"), timeout=TIMEOUT)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = selector_pb2_grpc.SelectorStub(
            with_token(channel, read_token_file(tmp_path / "internal.token"))
        )

        selected = stub.Select(iter(requests), timeout=TIMEOUT)
        assert (selected.session_id, selected.base_version, selected.candidate_count) == ("g1", 0, 15)
        assert len(selected.picks) == 3
        assert selected.picks[0].frame_name == "a-00-mp4.png" and math.isinf(selected.picks[0].distance)
        assert selected.select_seconds >= 0

        frames = [
            selector_pb2.RenderedFrame(frame_name=p.frame_name, key=f"frames/r1/{p.frame_name}")
            for p in selected.picks
        ]
        reply = stub.Commit(
            selector_pb2.CommitRequest(session_id="g1", tag_name="t1", frames=frames), timeout=TIMEOUT
        )
        assert reply.WhichOneof("outcome") == "committed"
        assert (reply.committed.version, reply.committed.tag_name, reply.committed.attempts) == (1, "t1", 1)
        assert [p.frame_name for p in reply.committed.picks] == [p.frame_name for p in selected.picks]

        summary = stub.GetPool(selector_pb2.GetPoolRequest(pool=_location(pool)), timeout=TIMEOUT)
        assert (summary.version, summary.frame_count, summary.dim, summary.model) == (1, 3, DIM, "m")
        assert [(t.name, t.run_id, t.frame_count, t.version) for t in summary.tags] == [("t1", "r1", 3, 1)]

        export = selector_pb2.ExportPoolRequest(pool=_location(pool), tag_name="t1", with_vectors=True)
        chunks = list(stub.ExportPool(export, timeout=TIMEOUT))
        entries = [e for c in chunks for e in c.entries]
        assert [e.frame_name for e in entries] == [p.frame_name for p in selected.picks]
        assert all(e.key == f"frames/r1/{e.frame_name}" and e.tag_name == "t1" for e in entries)
        exported = np.frombuffer(chunks[0].vectors.vectors, dtype="<f4").reshape(-1, chunks[0].vectors.dim)
        assert exported.shape == (3, DIM)
        rows = [p.frame_index + (10 if p.file.path == "b.avi" else 0) for p in selected.picks]
        np.testing.assert_allclose(exported, vectors[rows], atol=1e-3)

        processed = list(
            stub.ListProcessedFiles(selector_pb2.GetPoolRequest(pool=_location(pool)), timeout=TIMEOUT)
        )
        assert sorted(f.path for c in processed for f in c.files) == ["a.mp4", "b.avi"]

        with pytest.raises(grpc.RpcError) as missing_tag:
            list(
                stub.ExportPool(
                    selector_pb2.ExportPoolRequest(pool=_location(pool), tag_name="nope"), timeout=TIMEOUT
                )
            )
        assert missing_tag.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in str(
            missing_tag.value.details()
        )

        with pytest.raises(grpc.RpcError) as missing_session:
            stub.Commit(selector_pb2.CommitRequest(session_id="gone"), timeout=TIMEOUT)
        assert missing_session.value.code() == grpc.StatusCode.NOT_FOUND

        with pytest.raises(grpc.RpcError) as duplicate:
            stub.Select(iter(requests[:1]), timeout=TIMEOUT)
        assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS

        with pytest.raises(grpc.RpcError) as no_spec:
            stub.Select(iter(requests[1:]), timeout=TIMEOUT)
        assert no_spec.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "spec" in str(
            no_spec.value.details()
        )

        stub.CloseSession(selector_pb2.CloseSessionRequest(session_id="g1"), timeout=TIMEOUT)

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
