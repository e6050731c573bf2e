"""What the GPU backends share: pinned upload, normalise (and optionally resize) on the device.

Frames arrive in pinned host buffers (see `frame_buffer`), go to the GPU as uint8
(half the bytes of float16), and only the unit vectors come back.

By default the decoder scales frames to 224x224 as it does for the CPU backends,
so every backend sees the very same pixels and their vectors should differ by
float16 error only: torch's float16 on the CPU stays at cosine >= 0.9999 of float32
on our sample frames, and tests/embedder/test_backend_gpu.py checks the GPU backends
against the CPU one (not yet run on a GPU). `gpu_resize` instead uploads frames at decoded
size and resizes on the GPU, which saves the CPU ~1.3 ms per 720p frame (swscale)
but changes the pixels: EfficientNet-Lite0 turned out so sensitive to them that
vectors of the two resize paths had cosine 0.97-0.98 on our sample clips, as far
apart as consecutive frames. Such vectors must not share a cache entry with the
others, so `gpu_resize` gives the backend its own model_id.
"""

from __future__ import annotations

import abc
import threading

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from services.embedder.backends.base import ModelBackend
from services.embedder.backends.preprocess import to_model_input
from services.embedder.network import INPUT_SIZE, fold_batchnorm, load_network, model_id

GPU_RESIZE_SUFFIX = "+gpu-resize"
# Source pixels resized per step: bounds the float32 working set of the resize
# (64 frames of 1280x720 are ~700 MB) whatever the frame size.
PIXELS_PER_STEP = 64 * 1280 * 720


def cuda_model_id(gpu_resize: bool) -> str:
    """The model id of a GPU backend's vectors; GPU resizing gives other vectors (see above)."""
    return model_id() + (GPU_RESIZE_SUFFIX if gpu_resize else "")


def device_label(device: torch.device) -> str:
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} (sm_{major}{minor})"


def fp16_network(device: torch.device) -> torch.nn.Module:
    """The model with BatchNorm folded, in float16, channels-last, on `device`."""
    net = fold_batchnorm(load_network())
    return net.to(device=device, dtype=torch.float16).to(memory_format=torch.channels_last).eval()


class CudaBackend(ModelBackend):
    """A backend running on one CUDA device; subclasses supply `forward`."""

    max_batch = 256  # frames per model call

    def __init__(self, reason: str, device: int = 0, gpu_resize: bool = False) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA GPU visible to torch (torch.cuda.is_available() is False)")
        self.decode_size = None if gpu_resize else INPUT_SIZE
        self.model_id = cuda_model_id(gpu_resize)
        self.reason = reason
        self.device = torch.device("cuda", device)
        self.device_name = device_label(self.device)
        self._lock = threading.Lock()

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x 224 x 224 float16 channels-last on the device -> N x 1280 features."""

    def frame_buffer(self, count: int, height: int, width: int) -> NDArray[np.uint8]:
        # Pinned: the upload is a DMA straight from the buffer the decoder filled, with no
        # staging copy. torch's host allocator caches freed pinned blocks, so the next
        # file's buffers cost no new cudaHostAlloc, but it never gives them back: the
        # decode stage caps a buffer's bytes (batching.MAX_BUFFER_BYTES) to bound them.
        # Called on a decode thread, whose current device is 0 whatever ours is.
        with torch.cuda.device(self.device):
            pinned = torch.empty((count, height, width, 3), dtype=torch.uint8, pin_memory=True)
        array: NDArray[np.uint8] = pinned.numpy()  # keeps `pinned` alive through its .base
        return array

    def embed_on_device(self, frames: torch.Tensor) -> torch.Tensor:
        """N x H x W x 3 uint8 on the device -> N x dim float32 unit rows on the device."""
        n, height, width = frames.shape[:3]
        step = max(1, min(self.max_batch, PIXELS_PER_STEP // max(1, height * width)))
        # gRPC threads start on device 0: torch ops follow their tensors' device, but what
        # `forward` runs beside torch (TensorRT) uses the thread's current device.
        with torch.cuda.device(self.device):
            out = torch.empty((n, self.dim), dtype=torch.float32, device=self.device)
            for start in range(0, n, step):
                x = to_model_input(frames[start : start + step], self.input_size, torch.float16)
                out[start : start + step] = F.normalize(self.forward(x).float(), dim=1)
        return out

    def embed(self, frames: NDArray[np.uint8]) -> NDArray[np.float32]:
        self.check_batch(frames, any_size=True)
        with self._lock, torch.inference_mode():
            host = torch.from_numpy(np.ascontiguousarray(frames))
            # Asynchronous from pinned memory; the .cpu() below waits for everything.
            on_device = host.to(self.device, non_blocking=True)
            vectors: NDArray[np.float32] = self.embed_on_device(on_device).cpu().numpy()
        return vectors


class TorchCudaBackend(CudaBackend):
    """Eager PyTorch, float16, channels-last, cuDNN autotuned per batch shape.

    No CUDA graphs or torch.compile: at 64-256 frames a call the kernels are long
    enough that launch overhead is a few percent, and neither could be measured
    where this was written; bench/bench_embed.py --device cuda shows what is left.
    """

    name = "torch-cuda"

    def __init__(self, reason: str = "requested", device: int = 0, gpu_resize: bool = False) -> None:
        super().__init__(reason, device, gpu_resize)
        torch.backends.cudnn.benchmark = True
        self.network = fp16_network(self.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.network.extract_features(x)  # type: ignore[operator]
        return features.mean(dim=(2, 3))
