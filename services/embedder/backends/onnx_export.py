"""The model as an ONNX graph with a dynamic batch axis, for ONNX Runtime and TensorRT."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

# Old enough for every TensorRT 8.6+ and ONNX Runtime 1.14+, new enough for all our ops.
OPSET = 17
INPUT_NAME = "frames"
OUTPUT_NAME = "features"


def export_onnx(module: nn.Module, example: torch.Tensor) -> bytes:
    """Serialised ONNX of `module`, traced on `example`, with axis 0 (the batch) left dynamic.

    Needs the `onnx` package (the TorchScript exporter imports it to write the file).
    """
    with (
        tempfile.TemporaryDirectory() as folder,
        warnings.catch_warnings(),
        torch.inference_mode(False),
        torch.no_grad(),
    ):
        path = Path(folder) / "model.onnx"
        # The TorchScript exporter is deprecated in favour of the torch.export one, which
        # needs onnxscript besides; for this static CNN both give the same graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (example,),
            path,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
        return path.read_bytes()
