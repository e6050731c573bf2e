"""EfficientNet-Lite0 in eager PyTorch on the CPU: the backend that needs nothing extra."""

from __future__ import annotations

import logging
import threading

import numpy as np
import torch
from numpy.typing import NDArray

from services.embedder.backends.base import ModelBackend, available_cpus
from services.embedder.network import (
    PooledFeatures,
    fold_batchnorm,
    load_network,
    model_id,
    normalise_pixels,
    unit_rows,
)

log = logging.getLogger(__name__)


class TorchCpuBackend(ModelBackend):
    name = "torch-cpu"

    def __init__(self, threads: int | None = None, max_batch: int = 4, reason: str = "requested") -> None:
        self.model_id = model_id()
        self.reason = reason
        # Chunks of 4 frames took ~35% less CPU per frame than 16 (activations stay in
        # cache; bench/bench_cpu_backends.py); bigger batches only cost memory.
        self.max_batch = max_batch
        # One intra-op pool over all our cores; calls are serialised by _lock, so
        # concurrent requests never oversubscribe the CPU.
        torch.set_num_threads(threads or available_cpus())
        # channels_last saves ~30% of oneDNN's convolution time on x86, folded BatchNorm
        # another ~20% (bench/bench_cpu_backends.py).
        net = fold_batchnorm(load_network()).to(memory_format=torch.channels_last)
        self.features = PooledFeatures(net).eval()
        self._lock = threading.Lock()
        log.info("loaded %s on torch-cpu (%d threads)", self.model_id, torch.get_num_threads())

    def preprocess(self, frames: NDArray[np.uint8]) -> torch.Tensor:
        """uint8 NHWC -> float NCHW in [-1, 1], channels-last in memory."""
        # A permuted NHWC array is already channels_last: no copy until the cast.
        return normalise_pixels(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float())

    def embed(self, frames: NDArray[np.uint8]) -> NDArray[np.float32]:
        self.check_batch(frames)
        out = np.empty((len(frames), self.dim), dtype=np.float32)
        with self._lock, torch.inference_mode():
            for start in range(0, len(frames), self.max_batch):
                chunk = frames[start : start + self.max_batch]
                out[start : start + len(chunk)] = unit_rows(self.features(self.preprocess(chunk)))
        return out
