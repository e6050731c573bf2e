"""End-to-end embedding speed (decode + embed) against a naive baseline, measured in the same run.

The clip is 720p H.264 from datapool.samples (generated once, then cached in the temp folder).

- naive: PyAV decodes one frame at a time to a full-resolution RGB array, torch resizes it
  to 224x224 (bilinear), batches of 64 go through eager torch float32 NCHW on the device.
- ours: services.embedder.embedding.embed_file with the chosen backend (default: auto), i.e.
  the decode thread, bounded queues, pooled buffers and the backend's own preprocessing;
  `--streams N` embeds N copies of the clip at once, as the scheduler does with several files.

Each mode runs in its own process, so that each reports its own peak host memory (RSS)
and, on a GPU, peak GPU memory (torch.cuda.max_memory_allocated). Times exclude model
loading and one warm-up call. `--device cuda` also measures the backend alone on 224x224
frames already on the GPU (FP16, batches of --model-batch).

Run: .venv/bin/python bench/bench_embed.py                       (CPU, ~2-3 minutes on 2 cores)
     .venv/bin/python bench/bench_embed.py --device cuda --streams 4
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import av
import torch
import torch.nn.functional as F

from datapool.samples import make_video
from services.embedder.backends import BACKEND_NAMES, BackendOptions, load_backend
from services.embedder.embedding import EmbedSummary, embed_file
from services.embedder.network import PooledFeatures, load_network

SIZE = (1280, 720)
BATCH = 64


def clip(frames: int) -> Path:
    folder = Path(tempfile.gettempdir()) / "datapool-embed-bench"
    path = folder / f"clip-{SIZE[0]}x{SIZE[1]}-{frames}.mp4"
    if not path.exists():
        print(f"generating {path} ({frames} frames, once)...", file=sys.stderr, flush=True)
        partial = make_video(folder / f".{path.name}.partial.mp4", scene_seed=5, n_frames=frames, size=SIZE)
        partial.rename(path)
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def naive(path: Path, device: str, streams: int) -> dict[str, Any]:
    net = PooledFeatures(load_network()).to(device).eval()

    def run_one() -> int:
        count = 0
        batch: list[torch.Tensor] = []
        with av.open(str(path)) as container, torch.inference_mode():
            for frame in container.decode(video=0):
                rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).float()[None]
                batch.append(F.interpolate(rgb, size=(224, 224), mode="bilinear", align_corners=False))
                if len(batch) == BATCH:
                    count += embed(batch)
                    batch = []
            if batch:
                count += embed(batch)
        return count

    def embed(batch: list[torch.Tensor]) -> int:
        x = (torch.cat(batch) / 127.5 - 1.0).to(device)
        F.normalize(net(x), dim=1).cpu()
        return len(batch)

    with torch.inference_mode():
        net(torch.zeros((2, 3, 224, 224), device=device))  # warm-up
    return timed(run_one, streams, device)


def ours(path: Path, device: str, streams: int, backend_name: str, gpu_resize: bool) -> dict[str, Any]:
    backend = load_backend(backend_name, BackendOptions(gpu_resize=gpu_resize))
    backend.warm_up()

    def run_one() -> int:
        summary = None
        for event in embed_file(path, backend, BATCH):
            if isinstance(event, EmbedSummary):
                summary = event
        assert summary is not None
        return summary.frame_count

    result = timed(run_one, streams, device)
    result["backend"] = backend.name
    result["reason"] = backend.reason
    if device == "cuda":
        result["model_only"] = model_only(backend)
    return result


def model_only(backend: Any, batch: int = 256, calls: int = 40) -> dict[str, Any]:
    """images/s of the backend on 224x224 frames already on the GPU (upload and decode excluded)."""
    width, height = backend.input_size
    frames = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, device=backend.device)
    with torch.inference_mode():
        for _ in range(3):
            backend.embed_on_device(frames)
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(calls):
            backend.embed_on_device(frames)
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"batch": batch, "images_per_s": batch * calls / seconds}


def timed(run_one: Any, streams: int, device: str) -> dict[str, Any]:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    counts: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            counts.append(run_one())
        except BaseException as e:
            errors.append(e)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    result: dict[str, Any] = {
        "frames": sum(counts),
        "seconds": seconds,
        "frames_per_s": sum(counts) / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }
    if device == "cuda":
        result["gpu"] = torch.cuda.get_device_name(0)
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def in_subprocess(mode: str, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--only",
        mode,
        "--clip",
        str(path),
        "--device",
        args.device,
        "--streams",
        str(args.streams),
        "--backend",
        args.backend,
        *(["--gpu-resize"] if args.gpu_resize else []),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--frames", type=int, default=192, help="frames in the generated 720p clip")
    parser.add_argument("--streams", type=int, default=1, help="files embedded at once")
    parser.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    parser.add_argument(
        "--rounds", type=int, default=2, help="naive/ours alternations; the best of each counts"
    )
    parser.add_argument("--gpu-resize", action="store_true", help="GPU backends: resize on the GPU")
    parser.add_argument("--only", choices=["naive", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is not None:
        if args.only == "naive":
            result = naive(args.clip, args.device, args.streams)
        else:
            result = ours(args.clip, args.device, args.streams, args.backend, args.gpu_resize)
        print(json.dumps(result))
        return
    path = clip(args.frames)
    best: dict[str, dict[str, Any]] = {}
    for round_ in range(args.rounds):
        for mode in ("naive", "ours"):
            result = in_subprocess(mode, args, path)
            print(f"round {round_ + 1} {mode}: {result['frames_per_s']:.1f} frames/s", flush=True)
            if mode not in best or result["frames_per_s"] > best[mode]["frames_per_s"]:
                best[mode] = result
    naive_r, ours_r = best["naive"], best["ours"]
    print(f"clip: {path.name}, {args.streams} stream(s), device {args.device}")
    for mode, r in (("naive", naive_r), ("ours", ours_r)):
        line = (
            f"{mode:>5}: {r['frames_per_s']:8.1f} frames/s ({r['frames']} frames in {r['seconds']:.2f} s), "
        )
        line += f"peak RSS {r['peak_rss_mb']:.0f} MB"
        if "peak_gpu_mb" in r:
            line += f", peak GPU memory {r['peak_gpu_mb']:.0f} MB on {r['gpu']}"
        print(line)
    print(f"backend: {ours_r['backend']} ({ours_r['reason']})")
    print(f"ratio ours/naive: {ours_r['frames_per_s'] / naive_r['frames_per_s']:.2f}x")
    if "model_only" in ours_r:
        m = ours_r["model_only"]
        print(
            f"model only ({ours_r['backend']}, 224x224, batch {m['batch']}): {m['images_per_s']:.0f} images/s"
        )


if __name__ == "__main__":
    main()
