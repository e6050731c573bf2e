"""The interface a model backend offers the pipeline, and the errors of choosing one."""

from __future__ import annotations

import abc
import os

import numpy as np
from numpy.typing import NDArray

from datapool.errors import FailedPrecondition, InvalidArgument
from services.embedder.network import EMBEDDING_DIM, INPUT_SIZE


class UnknownBackend(InvalidArgument, ValueError):
    pass


class BackendUnavailable(FailedPrecondition):
    """A known backend this machine cannot run; the message says why."""


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
