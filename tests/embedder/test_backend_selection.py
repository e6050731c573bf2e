"""Which backend `auto` picks and why, overrides, and errors for unknown or unavailable names."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from datapool.config import MODEL_BACKENDS, parse_run_config
from datapool.errors import InvalidArgument
from services.embedder.backends import BACKEND_NAMES, auto_choice, check_available, load_backend
from services.embedder.backends.base import BackendUnavailable, UnknownBackend
from services.embedder.backends.onnx_cpu import OnnxRuntimeCpuBackend
from services.embedder.backends.torch_cpu import TorchCpuBackend

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="expects a machine without a CUDA GPU")
SELECTION = {
    "n_samples": 1,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def test_auto_prefers_tensorrt_then_torch_cuda_on_a_gpu() -> None:
    name, reason = auto_choice("NVIDIA H100", {})
    assert name == "tensorrt" and "NVIDIA H100" in reason
    missing = "tensorrt not importable (ModuleNotFoundError: No module named 'tensorrt')"
    name, reason = auto_choice("NVIDIA H100", {"tensorrt": missing})
    assert name == "torch-cuda"
    assert reason == f"auto: CUDA GPU NVIDIA H100 present but {missing}; using torch-cuda FP16"


def test_auto_prefers_onnxruntime_then_torch_on_a_cpu() -> None:
    name, reason = auto_choice(None, {"tensorrt": "x", "torch-cuda": "y"})
    assert name == "onnxruntime-cpu" and "no CUDA GPU" in reason
    name, reason = auto_choice(None, {"onnxruntime-cpu": "onnxruntime not importable (ImportError: blocked)"})
    assert name == "torch-cpu"
    assert "no CUDA GPU" in reason and "onnxruntime not importable (ImportError: blocked)" in reason


@no_gpu
def test_auto_on_this_cpu_machine_loads_onnxruntime_and_says_why() -> None:
    backend = load_backend("auto")
    assert isinstance(backend, OnnxRuntimeCpuBackend)
    assert backend.reason.startswith("auto: no CUDA GPU (torch.cuda.is_available() is False)")


@no_gpu
def test_auto_without_onnxruntime_falls_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    backend = load_backend("auto")
    assert isinstance(backend, TorchCpuBackend)
    assert "onnxruntime not importable (ModuleNotFoundError" in backend.reason


def test_a_named_backend_overrides_auto() -> None:
    backend = load_backend("torch-cpu", key="--backend")
    assert isinstance(backend, TorchCpuBackend) and backend.reason == "requested by --backend"


def test_unknown_names_are_refused_naming_the_key() -> None:
    with pytest.raises(UnknownBackend, match=r"^--backend: unknown model backend 'cuda'; known: auto, "):
        load_backend("cuda", key="--backend")
    with pytest.raises(UnknownBackend, match=r"^worker_config.model_backend: unknown model backend"):
        check_available("trt", key="worker_config.model_backend")


@no_gpu
def test_gpu_backends_are_unavailable_without_a_gpu() -> None:
    for name in ("torch-cuda", "tensorrt"):
        with pytest.raises(
            BackendUnavailable, match=rf"^--backend: model backend '{name}' cannot run here: no CUDA"
        ):
            load_backend(name, key="--backend")


def test_run_config_refuses_unknown_backends_at_parse() -> None:
    assert BACKEND_NAMES == MODEL_BACKENDS
    for name in MODEL_BACKENDS:
        assert parse_run_config({"model_backend": name}, SELECTION).worker.model_backend == name
    with pytest.raises(
        InvalidArgument, match=r"worker_config.model_backend: unknown model backend 'gpu'; known:"
    ):
        parse_run_config({"model_backend": "gpu"}, SELECTION)


@no_gpu
def test_cli_refuses_an_unavailable_backend_naming_the_flag() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.embedder",
            "--insecure-no-internal-token",
            "--backend",
            "torch-cuda",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--backend: model backend 'torch-cuda' cannot run here: no CUDA GPU" in done.stderr
