"""Every CPU backend embeds the same model: vectors agree to float error and share one model_id."""

from __future__ import annotations

import numpy as np
import pytest
from embedder_media import Media

from services.embedder.backends import load_backend
from services.embedder.backends.onnx_cpu import OnnxRuntimeCpuBackend
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.decode import FrameDecoder

# Measured: onnxruntime-cpu vs torch-cpu >= 0.9999999 on every sample frame (float32 both,
# differing only in summation order). EfficientNet-Lite0 is very sensitive to pixel changes
# on these smooth synthetic frames (+-1 grey level of noise takes cosine to ~0.5), so equal
# inputs are the point: both backends get the decoder's pixels.
CPU_COSINE = 0.99999


@pytest.fixture(scope="module")
def onnx_backend() -> OnnxRuntimeCpuBackend:
    loaded = load_backend("onnxruntime-cpu")
    assert isinstance(loaded, OnnxRuntimeCpuBackend)
    return loaded


def decoded(media: Media) -> np.ndarray:
    frames: list[np.ndarray] = []
    for path in (*media.videos, media.png, media.jpg):
        with FrameDecoder(path, size=(224, 224)) as decoder:
            frames.extend(frame for _, frame in decoder.frames())
    return np.stack(frames)


def test_onnxruntime_agrees_with_torch(
    backend: TorchCpuBackend, onnx_backend: OnnxRuntimeCpuBackend, media: Media
) -> None:
    frames = decoded(media)
    a, b = backend.embed(frames), onnx_backend.embed(frames)
    assert a.shape == b.shape == (len(frames), 1280) and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosine = (a * b).sum(axis=1)
    assert float(cosine.min()) >= CPU_COSINE, cosine.min()
    # Not vacuous: distinct scenes are far apart under either backend.
    assert float(a[0] @ a[-1]) < 0.9 and float(b[0] @ b[-1]) < 0.9
    assert onnx_backend.model_id == backend.model_id


def test_onnxruntime_batches_like_it_embeds_alone(onnx_backend: OnnxRuntimeCpuBackend, media: Media) -> None:
    frames = decoded(media)[:11]  # more than one internal chunk of 8, and a ragged tail
    together = onnx_backend.embed(frames)
    alone = np.concatenate([onnx_backend.embed(frames[i : i + 1]) for i in range(len(frames))])
    np.testing.assert_allclose(together, alone, atol=1e-5)
