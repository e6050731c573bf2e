"""CPU time per 224x224 frame of each way to run the model on a CPU, against plain eager torch.

One inference thread, timed with the thread's own CPU clock, so the numbers hold on a
busy shared machine; the vectors of each variant are compared with the baseline's.
The variants: eager torch float32 NCHW (the baseline), channels-last, channels-last with
BatchNorm folded into the convolutions (the torch-cpu backend), the same in bfloat16
autocast, and ONNX Runtime (the onnxruntime-cpu backend).

Run: .venv/bin/python bench/bench_cpu_backends.py [--batches 4 16]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from datapool.samples import Scene
from services.embedder.backends.onnx_cpu import OnnxRuntimeCpuBackend
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.network import PooledFeatures, load_network, normalise_pixels, unit_rows

Embed = Callable[[np.ndarray], np.ndarray]


def variants() -> dict[str, Embed]:
    torch.set_num_threads(1)
    plain = PooledFeatures(load_network())
    channels_last = PooledFeatures(load_network().to(memory_format=torch.channels_last))
    folded = TorchCpuBackend(threads=1, max_batch=1 << 20)
    onnx = OnnxRuntimeCpuBackend(threads=1, max_batch=1 << 20)

    def nchw(frames: np.ndarray) -> torch.Tensor:
        return normalise_pixels(torch.from_numpy(frames).permute(0, 3, 1, 2).float()).contiguous()

    def bf16(frames: np.ndarray) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return unit_rows(folded.features(folded.preprocess(frames)))

    return {
        "torch NCHW fp32 (baseline)": lambda f: unit_rows(plain(nchw(f))),
        "torch channels-last": lambda f: unit_rows(channels_last(folded.preprocess(f))),
        "torch channels-last + folded BN (torch-cpu)": folded.embed,
        "torch channels-last + folded BN, bf16": bf16,
        "onnxruntime (onnxruntime-cpu)": onnx.embed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--rounds", type=int, default=3, help="best of this many timings")
    args = parser.parse_args()
    frames = np.stack([Scene(seed, (224, 224)).frame(0) for seed in range(max(args.batches))])
    runs = variants()
    with torch.inference_mode():
        reference = next(iter(runs.values()))(frames)
        for batch in args.batches:
            ms: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, embed in runs.items():
                    started = time.thread_time()
                    embed(frames[:batch])
                    spent = (time.thread_time() - started) * 1000 / batch
                    ms[name] = min(ms.get(name, spent), spent)
            base = next(iter(ms.values()))
            print(f"batch {batch}: CPU ms per frame (1 thread), speed-up over the baseline, min cosine")
            for name, value in ms.items():
                cosine = float((runs[name](frames) * reference).sum(axis=1).min())
                print(f"  {name:<46} {value:6.1f} ms  {base / value:4.2f}x  cos {cosine:.6f}")


if __name__ == "__main__":
    main()
