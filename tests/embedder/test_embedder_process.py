"""`python -m services.embedder` as a real process: starts, serves, exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from embedder_media import N_FRAMES, Media

from datapool.channels import make_channel, wait_healthy
from datapool.internal_token import ensure_token_file, read_token_file
from datapool.v1 import embedder_pb2, embedder_pb2_grpc
from services.common.auth import with_token

REPO = Path(__file__).resolve().parents[2]


def wait_for_port(port_file: Path, process: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"embedder exited early with {process.returncode}")
        text = port_file.read_text() if port_file.exists() else ""
        if text.endswith("\n"):
            return int(text)
        time.sleep(0.05)
    raise AssertionError("embedder did not bind a port in time")


def test_serves_then_exits_zero_on_sigterm(media: Media, tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    token_file = ensure_token_file(tmp_path / "internal.token")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.embedder", "--port", "0", "--port-file", str(port_file)],
        # By environment, as a mounted secret would be named in a deployment.
        env={**os.environ, "DATAPOOL_INTERNAL_TOKEN_FILE": str(token_file)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        port = wait_for_port(port_file, process, timeout=60)
        address = f"127.0.0.1:{port}"
        assert wait_healthy(address, timeout=60)
        with make_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                embedder_pb2_grpc.EmbedderStub(channel).GetModelInfo(
                    embedder_pb2.GetModelInfoRequest(), timeout=60
                )
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stub = embedder_pb2_grpc.EmbedderStub(with_token(channel, read_token_file(token_file)))
            request = embedder_pb2.EmbedFileRequest(source=media.location(), file=media.ref(media.videos[0]))
            responses = list(stub.EmbedFile(request, timeout=60))
        assert [r.WhichOneof("event") for r in responses] == ["info", "batch", "done"]
        batch = responses[1].batch
        vectors = np.frombuffer(batch.vectors, dtype="<f4").reshape(N_FRAMES, batch.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=10)
        assert returncode == 0
        assert time.monotonic() - started < 6
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        # Closed here, not by garbage collection: an unclosed pipe is a ResourceWarning, an error
        # under filterwarnings=error in whichever later test happens to collect it.
        with process.stderr:
            log = process.stderr.read().decode()
    assert "embedder listening on port" in log
    assert "embedder stopped" in log
