"""One embedder, several backends: the default, others loaded once on demand, and refusals a
scheduler can act on before a run embeds anything (GetModelInfo with a backend)."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
import torch
from embedder_media import Media

from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.embedder.backend_set import BackendSet
from services.embedder.backends.onnx_cpu import OnnxRuntimeCpuBackend
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.model import BackendUnavailable, UnknownBackend

TIMEOUT = 60.0
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="expects a machine without a CUDA GPU")


def test_no_name_auto_and_the_default_name_mean_the_default(backend: TorchCpuBackend) -> None:
    backends = BackendSet(backend)
    for name in ("", "auto", "torch-cpu"):
        assert backends.get(name) is backend
        assert backends.describe(name) == ("torch-cpu", backend.reason)


def test_another_backend_loads_once_even_when_asked_concurrently(backend: TorchCpuBackend) -> None:
    backends = BackendSet(backend)
    name, reason = backends.describe("onnxruntime-cpu")  # checked, not loaded
    assert name == "onnxruntime-cpu" and "worker_config.model_backend='onnxruntime-cpu'" in reason
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(backends.get("onnxruntime-cpu"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(g is got[0] for g in got)
    assert isinstance(got[0], OnnxRuntimeCpuBackend) and got[0].reason == reason


def test_unknown_and_unavailable_names_are_refused(backend: TorchCpuBackend) -> None:
    backends = BackendSet(backend)
    with pytest.raises(UnknownBackend, match=r"worker_config.model_backend\): unknown model backend 'cuda'"):
        backends.get("cuda")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match=r"'tensorrt' cannot run here: no CUDA GPU"):
            backends.describe("tensorrt")


def test_model_info_names_the_backend_a_run_asks_for(embedder_stub: embedder_pb2_grpc.EmbedderStub) -> None:
    info = embedder_stub.GetModelInfo(
        embedder_pb2.GetModelInfoRequest(backend="onnxruntime-cpu"), timeout=TIMEOUT
    )
    assert (info.backend, info.dim) == ("onnxruntime-cpu", 1280)
    assert "worker_config.model_backend" in info.backend_reason
    default = embedder_stub.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=TIMEOUT)
    assert default.backend == "torch-cpu" and default.model == info.model


def test_model_info_refuses_unknown_and_unavailable_backends(
    embedder_stub: embedder_pb2_grpc.EmbedderStub,
) -> None:
    with pytest.raises(grpc.RpcError) as unknown:
        embedder_stub.GetModelInfo(embedder_pb2.GetModelInfoRequest(backend="nope"), timeout=TIMEOUT)
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown model backend 'nope'" in (unknown.value.details() or "")
    if not torch.cuda.is_available():
        with pytest.raises(grpc.RpcError) as unavailable:
            embedder_stub.GetModelInfo(
                embedder_pb2.GetModelInfoRequest(backend="torch-cuda"), timeout=TIMEOUT
            )
        assert unavailable.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "worker_config.model_backend" in (unavailable.value.details() or "")


def test_embed_file_with_another_backend_gives_the_same_vectors(
    embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media
) -> None:
    def vectors(backend: str) -> np.ndarray:
        request = embedder_pb2.EmbedFileRequest(
            source=media.location(),
            file=media.ref(media.videos[1]),
            dtype=common_pb2.FLOAT32,
            backend=backend,
        )
        batches = [
            r.batch
            for r in embedder_stub.EmbedFile(request, timeout=TIMEOUT)
            if r.WhichOneof("event") == "batch"
        ]
        return np.concatenate([np.frombuffer(b.vectors, "<f4").reshape(-1, b.dim) for b in batches])

    default, onnx = vectors(""), vectors("onnxruntime-cpu")
    assert default.shape == onnx.shape
    assert float((default * onnx).sum(axis=1).min()) >= 0.99999


@no_gpu
def test_embed_file_with_an_unavailable_backend_fails_up_front(
    embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media
) -> None:
    request = embedder_pb2.EmbedFileRequest(
        source=media.location(), file=media.ref(media.videos[0]), backend="tensorrt"
    )
    with pytest.raises(grpc.RpcError) as failed:
        list(embedder_stub.EmbedFile(request, timeout=TIMEOUT))
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "'tensorrt' cannot run here" in (failed.value.details() or "")
