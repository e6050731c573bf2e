"""Choosing and loading a model backend by name.

- `tensorrt`: a float16 TensorRT engine on a CUDA GPU (the `gpu` extra), cached on disk.
- `torch-cuda`: PyTorch float16 on a CUDA GPU, for where TensorRT is not installed.
- `onnxruntime-cpu`: ONNX Runtime on the CPU, about twice as fast as torch there (measured).
- `torch-cpu`: PyTorch on the CPU: needs nothing beyond torch.

"auto" takes the first of these the machine can run and says why in `reason`,
which reaches the run report through GetModelInfo.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from datapool.config import MODEL_BACKENDS
from services.embedder.backends.base import BackendUnavailable, ModelBackend, UnknownBackend
from services.embedder.network import model_id

log = logging.getLogger(__name__)

BACKEND_NAMES = MODEL_BACKENDS
# What each backend imports beyond torch (onnx: the exporter writes the graph with it).
_NEEDS_MODULES = {
    "tensorrt": ("tensorrt", "onnx"),
    "torch-cuda": (),
    "onnxruntime-cpu": ("onnxruntime", "onnx"),
    "torch-cpu": (),
}
_ON_GPU = frozenset({"tensorrt", "torch-cuda"})
_NO_GPU = "no CUDA GPU (torch.cuda.is_available() is False)"


@dataclass(frozen=True)
class BackendOptions:
    threads: int | None = None  # CPU backends: inference threads (default: all our cores)
    trt_cache: Path | None = None  # tensorrt: engine cache folder (default: see tensorrt_engine)
    device: int = 0  # GPU backends: CUDA device index
    gpu_resize: bool = False  # GPU backends: resize on the GPU (see backends/cuda.py for the cost)


def gpu_name() -> str | None:
    """The CUDA device torch sees, or None."""
    if not torch.cuda.is_available():
        return None
    return str(torch.cuda.get_device_name(0))


def _missing_module(name: str) -> str | None:
    for module in _NEEDS_MODULES[name]:
        try:
            importlib.import_module(module)
        except ImportError as e:
            return f"{module} not importable ({e.__class__.__name__}: {e})"
    return None


def known(name: str, key: str) -> str:
    if name not in BACKEND_NAMES:
        raise UnknownBackend(f"{key}: unknown model backend {name!r}; known: {', '.join(BACKEND_NAMES)}")
    return name


def unavailable_reason(name: str) -> str | None:
    """Why this machine cannot run backend `name` (a known name, not "auto"), or None if it can."""
    if name in _ON_GPU and not torch.cuda.is_available():
        return _NO_GPU
    return _missing_module(name)


def check_available(name: str, key: str = "--backend") -> None:
    """Raises UnknownBackend or BackendUnavailable, naming `key`, unless `name` can run here."""
    if known(name, key) == "auto":
        return
    why = unavailable_reason(name)
    if why is not None:
        raise BackendUnavailable(f"{key}: model backend {name!r} cannot run here: {why}")


def auto_choice(gpu: str | None, unavailable: Mapping[str, str]) -> tuple[str, str]:
    """The backend "auto" picks, and why, given the GPU (or None) and what cannot run.

    Measured on one CPU core: ONNX Runtime 9.7 ms of CPU per frame, torch 18.3 ms
    (bench/bench_cpu_backends.py), hence ONNX Runtime first on a CPU.
    """
    if gpu is not None:
        if "tensorrt" not in unavailable:
            return "tensorrt", f"auto: CUDA GPU {gpu} present and tensorrt importable; using TensorRT FP16"
        return (
            "torch-cuda",
            f"auto: CUDA GPU {gpu} present but {unavailable['tensorrt']}; using torch-cuda FP16",
        )
    if "onnxruntime-cpu" not in unavailable:
        return (
            "onnxruntime-cpu",
            f"auto: {_NO_GPU}; using ONNX Runtime on the CPU (measured ~2x the frames/s of torch there)",
        )
    return "torch-cpu", f"auto: {_NO_GPU} and {unavailable['onnxruntime-cpu']}; using torch on the CPU"


def backend_model_id(name: str, options: BackendOptions) -> str:
    """The model id backend `name` (a known name, not "auto") would give its vectors, without loading it."""
    if name in _ON_GPU:
        from services.embedder.backends.cuda import cuda_model_id

        return cuda_model_id(options.gpu_resize)
    return model_id()


def _construct(name: str, options: BackendOptions, reason: str) -> ModelBackend:
    if name == "tensorrt":
        from services.embedder.backends.tensorrt_engine import TensorRtBackend

        return TensorRtBackend(
            reason=reason, device=options.device, cache_dir=options.trt_cache, gpu_resize=options.gpu_resize
        )
    if name == "torch-cuda":
        from services.embedder.backends.cuda import TorchCudaBackend

        return TorchCudaBackend(reason=reason, device=options.device, gpu_resize=options.gpu_resize)
    if name == "onnxruntime-cpu":
        from services.embedder.backends.onnx_cpu import OnnxRuntimeCpuBackend

        return OnnxRuntimeCpuBackend(threads=options.threads, reason=reason)
    from services.embedder.backends.torch_cpu import TorchCpuBackend

    return TorchCpuBackend(threads=options.threads, reason=reason)


# If the first choice fails to load (a TensorRT build error, say), auto falls back to the next.
_FALLBACK = {"tensorrt": "torch-cuda", "onnxruntime-cpu": "torch-cpu"}


def load_backend(
    name: str = "auto",
    options: BackendOptions | None = None,
    key: str = "--backend",
    reason: str | None = None,
) -> ModelBackend:
    """The backend called `name`; "auto" picks the fastest one this machine can run.

    `key` names where the name came from in errors (`--backend`, `worker_config.model_backend`).
    """
    options = options or BackendOptions()
    check_available(name, key)
    if name != "auto":
        return _construct(name, options, reason or f"requested by {key}")
    unavailable = {
        n: why for n in BACKEND_NAMES if n != "auto" and (why := unavailable_reason(n)) is not None
    }
    choice, why = auto_choice(gpu_name(), unavailable)
    try:
        return _construct(choice, options, why)
    except Exception as e:
        fallback = _FALLBACK.get(choice)
        if fallback is None:
            raise
        log.warning("auto: %s failed to load (%s); falling back to %s", choice, e, fallback)
        because = (
            f"{why.removesuffix('.')}, but it failed to load ({e.__class__.__name__}: {e}); using {fallback}"
        )
        return _construct(fallback, options, because)
