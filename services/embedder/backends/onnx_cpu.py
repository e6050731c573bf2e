"""EfficientNet-Lite0 in ONNX Runtime on the CPU: the fastest CPU backend we measured.

On an AMD EPYC core (AVX-512) ONNX Runtime took 9.7 ms of CPU per 224x224 frame against
18.3 ms for eager torch with channels-last and folded BatchNorm (torch-cpu) and 34 ms for
plain eager NCHW torch, with vectors equal to float32 rounding (bench/bench_cpu_backends.py).
End to end on 720p H.264 with 2 cores: ~120 frames/s against ~50 for torch-cpu.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from services.embedder.backends.base import ModelBackend, available_cpus
from services.embedder.backends.onnx_export import INPUT_NAME, export_onnx
from services.embedder.network import UInt8Features, fold_batchnorm, load_network, model_id

log = logging.getLogger(__name__)


class OnnxRuntimeCpuBackend(ModelBackend):
    name = "onnxruntime-cpu"

    def __init__(self, threads: int | None = None, max_batch: int = 8, reason: str = "requested") -> None:
        import onnxruntime as ort

        self.model_id = model_id()
        self.reason = reason
        # Time per frame was flat from 1 to 64 frames a call (9.2-10.3 ms); end to end,
        # chunks of 8 ran ~6% faster than 32 (less memory traffic beside the decoder).
        self.max_batch = max_batch
        width, height = self.input_size
        # Exported at every start (~1 s): no file to go stale when torch or the weights change.
        graph = export_onnx(
            UInt8Features(fold_batchnorm(load_network())),
            torch.zeros((2, height, width, 3), dtype=torch.uint8),
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads steal the core the decode thread needs: on 2 busy cores,
        # 2 threads without spinning ran 72-105 frames/s, 2 spinning threads 45-59. Two
        # threads beat one end to end (~120 against ~90 frames/s on 720p).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()
        log.info(
            "loaded %s on onnxruntime-cpu %s (%d threads)",
            self.model_id,
            ort.__version__,
            options.intra_op_num_threads,
        )

    def embed(self, frames: NDArray[np.uint8]) -> NDArray[np.float32]:
        self.check_batch(frames)
        out = np.empty((len(frames), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(frames), self.max_batch):
                chunk = np.ascontiguousarray(frames[start : start + self.max_batch])
                (features,) = self._session.run(None, {INPUT_NAME: chunk})
                out[start : start + len(chunk)] = features
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
