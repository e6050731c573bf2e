"""One embedder, several backends: the default, others loaded once on demand, and refusals a
scheduler can act on before a run embeds anything (GetModelInfo with a backend)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import torch
from embedder_media import Media

from datapool.channels import make_channel
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.embedder.backend_set import BackendChoice, BackendSet
from services.embedder.backends import BackendOptions, backend_model_id, load_backend
from services.embedder.backends.base import BackendUnavailable, ModelBackend, UnknownBackend
from services.embedder.backends.cuda import GPU_RESIZE_SUFFIX
from services.embedder.backends.onnx_cpu import OnnxRuntimeCpuBackend
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.network import model_id
from services.embedder.server import make_server

TIMEOUT = 60.0
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="expects a machine without a CUDA GPU")


def test_no_name_auto_and_the_default_name_mean_the_default(backend: TorchCpuBackend) -> None:
    backends = BackendSet(backend)
    for name in ("", "auto", "torch-cpu"):
        assert backends.get(name) is backend
        assert backends.describe(name) == BackendChoice("torch-cpu", backend.model_id, 1280, backend.reason)


def test_another_backend_loads_once_even_when_asked_concurrently(backend: TorchCpuBackend) -> None:
    backends = BackendSet(backend)
    choice = backends.describe("onnxruntime-cpu")  # checked, not loaded
    name, reason = choice.name, choice.reason
    assert name == "onnxruntime-cpu" and "worker_config.model_backend='onnxruntime-cpu'" in reason
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(backends.get("onnxruntime-cpu"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(g is got[0] for g in got)
    assert isinstance(got[0], OnnxRuntimeCpuBackend) and got[0].reason == reason
    assert got[0].model_id == choice.model_id and backends.describe("onnxruntime-cpu") == choice


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


def gpu_resize_like(backend: TorchCpuBackend) -> ModelBackend:
    """The default of a replica started with --gpu-resize, as far as model ids go: such a
    replica needs a GPU, so a CPU backend stands in, with that replica's model id."""
    odd = copy.copy(backend)
    odd.model_id = backend_model_id("torch-cuda", BackendOptions(gpu_resize=True))
    return odd


def test_model_ids_without_loading_follow_the_gpu_resize_option() -> None:
    resize = BackendOptions(gpu_resize=True)
    for name in ("tensorrt", "torch-cuda"):
        assert backend_model_id(name, resize) == model_id() + GPU_RESIZE_SUFFIX
        assert backend_model_id(name, BackendOptions()) == model_id()
    for name in ("onnxruntime-cpu", "torch-cpu"):
        assert backend_model_id(name, resize) == model_id()


def test_describe_names_the_model_id_of_the_named_backend_not_the_defaults(backend: TorchCpuBackend) -> None:
    backends = BackendSet(gpu_resize_like(backend))
    assert backends.describe("").model_id == model_id() + GPU_RESIZE_SUFFIX
    assert backends.describe("onnxruntime-cpu").model_id == model_id()
    assert backends.get("onnxruntime-cpu").model_id == model_id()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_describe_of_a_gpu_backend_with_gpu_resize_matches_the_loaded_one(backend: TorchCpuBackend) -> None:
    backends = BackendSet(backend, BackendOptions(gpu_resize=True))
    described = backends.describe("torch-cuda").model_id
    assert described == model_id() + GPU_RESIZE_SUFFIX == backends.get("torch-cuda").model_id


def test_model_info_answers_the_model_id_embed_file_will_put_in_done(
    backend: TorchCpuBackend, media: Media
) -> None:
    server = make_server(gpu_resize_like(backend), "127.0.0.1:0", max_workers=4)
    server.start()
    try:
        with make_channel(f"127.0.0.1:{server.port}") as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            for name in ("", "onnxruntime-cpu"):
                info = stub.GetModelInfo(embedder_pb2.GetModelInfoRequest(backend=name), timeout=TIMEOUT)
                request = embedder_pb2.EmbedFileRequest(
                    source=media.location(), file=media.ref(media.videos[0]), backend=name
                )
                (done,) = [r.done for r in stub.EmbedFile(request, timeout=TIMEOUT) if r.HasField("done")]
                assert info.model == done.model
            assert info.model == model_id() != backend_model_id("torch-cuda", BackendOptions(gpu_resize=True))
    finally:
        server.stop(0)


@pytest.fixture(scope="module")
def onnx_default() -> OnnxRuntimeCpuBackend:
    loaded = load_backend("onnxruntime-cpu")
    assert isinstance(loaded, OnnxRuntimeCpuBackend)
    return loaded


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Counts the real loads BackendSet starts."""
    calls: list[str] = []

    def counted(name: str, *args: Any, **kwargs: Any) -> ModelBackend:
        calls.append(name)
        return load_backend(name, *args, **kwargs)

    monkeypatch.setattr("services.embedder.backend_set.load_backend", counted)
    yield calls


# torch refuses a thread count below 1 when torch-cpu loads: a real load failure of a
# backend that check_available accepts (torch imports, no GPU needed).
BAD_THREADS = BackendOptions(threads=-1)
LOAD_FAILURE = r"'torch-cpu' failed to load: RuntimeError: set_num_threads expects a positive integer"


def test_a_failed_load_is_answered_at_once_afterwards_even_to_waiting_requests(
    onnx_default: OnnxRuntimeCpuBackend, load_calls: list[str]
) -> None:
    backends = BackendSet(onnx_default, BAD_THREADS)
    assert backends.describe("torch-cpu").name == "torch-cpu"  # nothing known against it yet
    errors: list[BaseException] = []

    def get() -> None:
        try:
            backends.get("torch-cpu")
        except BackendUnavailable as e:
            errors.append(e)

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert load_calls == ["torch-cpu"] and len(errors) == 4
    assert all("worker_config.model_backend" in str(e) for e in errors)
    with pytest.raises(BackendUnavailable, match=LOAD_FAILURE + r" \(not loaded again for another \d+ s"):
        backends.get("torch-cpu")
    # GetModelInfo answers from describe: the next run is refused before it embeds.
    with pytest.raises(BackendUnavailable, match=LOAD_FAILURE):
        backends.describe("torch-cpu")
    assert load_calls == ["torch-cpu"]


def test_a_failed_load_is_tried_again_after_the_cool_down(
    onnx_default: OnnxRuntimeCpuBackend, load_calls: list[str]
) -> None:
    backends = BackendSet(onnx_default, BAD_THREADS, retry_after_s=0.0)
    for _ in range(2):
        with pytest.raises(BackendUnavailable, match=LOAD_FAILURE):
            backends.get("torch-cpu")
    assert load_calls == ["torch-cpu", "torch-cpu"]
    assert backends.describe("torch-cpu").name == "torch-cpu"
