"""Frames -> model input, in torch, so it runs wherever the frames are (the GPU).

Frames already at the input size (the decoder scaled them) are only normalised.
Other sizes are resized here with an area-aware bilinear filter, like swscale's;
close, but not the same pixels (see backends/cuda.py for what that does to vectors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from services.embedder.network import normalise_pixels


def to_model_input(frames: torch.Tensor, size: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x h x w `dtype` in [-1, 1], channels-last in memory.

    `size` is (width, height). Resizing runs in float32 (pixel values up to 255 lose
    precision in float16), then the result is cast to `dtype`.
    """
    width, height = size
    # A permuted NHWC tensor is already channels-last: no copy until the cast.
    x = frames.permute(0, 3, 1, 2).to(torch.float32)
    if x.shape[2:] != (height, width):
        # antialias: a bilinear filter widened to the scale factor, like swscale's and
        # PIL's, so a downscale averages every source pixel instead of sampling a few.
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp_(0.0, 255.0)
    return normalise_pixels(x).to(dtype).contiguous(memory_format=torch.channels_last)
