"""The GPU backends (skipped without a CUDA GPU; bench/gpu_check.sh runs them on one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedder_media import Media

from services.embedder.backends import load_backend
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.decode import FrameDecoder
from services.embedder.embedding import FrameBatch, embed_file

pytestmark = pytest.mark.gpu

# float16 arithmetic against float32: measured >= 0.99994 on the sample frames with torch's
# float16 on the CPU; 0.9995 leaves room for other kernels.
FP16_COSINE = 0.9995


def decoded(media: Media) -> np.ndarray:
    frames: list[np.ndarray] = []
    for path in (*media.videos, media.png):
        with FrameDecoder(path, size=(224, 224)) as decoder:
            frames.extend(frame for _, frame in decoder.frames())
    return np.stack(frames)


def test_torch_cuda_is_fp16_and_agrees_with_the_cpu(backend: TorchCpuBackend, media: Media) -> None:
    from services.embedder.backends.cuda import TorchCudaBackend

    gpu = load_backend("torch-cuda")
    assert isinstance(gpu, TorchCudaBackend)
    assert next(gpu.network.parameters()).dtype == torch.float16
    assert gpu.model_id == backend.model_id and gpu.decode_size == (224, 224)
    frames = decoded(media)
    a, b = backend.embed(frames), gpu.embed(frames)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    assert float((a * b).sum(axis=1).min()) >= FP16_COSINE
    # Pinned buffers from frame_buffer embed the same as plain arrays.
    pinned = gpu.frame_buffer(len(frames), 224, 224)
    pinned[:] = frames
    np.testing.assert_allclose(gpu.embed(pinned), b, atol=1e-3)


def test_auto_picks_a_gpu_backend_and_says_why() -> None:
    chosen = load_backend("auto")
    assert chosen.name in ("tensorrt", "torch-cuda")
    assert chosen.reason.startswith("auto: CUDA GPU ") and torch.cuda.get_device_name(0) in chosen.reason


def test_gpu_resize_embeds_full_size_frames_under_its_own_model_id(media: Media) -> None:
    from services.embedder.backends import BackendOptions

    gpu = load_backend("torch-cuda", BackendOptions(gpu_resize=True))
    assert gpu.decode_size is None and gpu.model_id.endswith("+gpu-resize")
    events = list(embed_file(media.videos[0], gpu, batch_size=5))
    vectors = np.concatenate([e.vectors for e in events if isinstance(e, FrameBatch)])
    assert vectors.shape[1] == 1280
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_the_pipeline_streams_in_order_on_the_gpu(media: Media) -> None:
    gpu = load_backend("torch-cuda")
    events = list(embed_file(media.videos[2], gpu, batch_size=5))
    indices = [i for e in events if isinstance(e, FrameBatch) for i in e.frame_indices]
    assert indices == list(range(len(indices))) and indices
