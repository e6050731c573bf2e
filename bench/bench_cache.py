"""The embedding cache: a `process_all` run over unchanged files against the first run over them.

Generates videos into a local folder (datapool.samples.make_sample_bucket), starts the services
as `datapool up` does (datapool.stack.Stack), and through the client runs, in this process:
  (1) the first run over the folder: every frame decoded and embedded (the baseline);
  (2) `process_all` runs over the same, unchanged files (--repeats of them): every file's
      vectors come from the pool's embedding cache, so no frame is decoded or embedded.
Each run is timed from ScheduleRun to its report as the client sees it; the scheduler's own
stage seconds are printed beside. The ratio is the baseline over the median cached run.

    .venv/bin/python bench/bench_cache.py [--videos 16] [--frames 60] [--size 320x180]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.ports import free_port
from datapool.samples import make_sample_bucket
from datapool.stack import Stack

SELECTION = {
    "n_samples": 10,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def timed_run(client: ApiWorkflowClient, worker: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    run_id = client.schedule_compute_worker_run(worker_config=worker, selection_config=SELECTION)
    for _ in client.compute_worker_run_info_generator(run_id):
        pass
    info = client.get_compute_worker_run_info(run_id)
    if not info.ended_successfully():
        raise SystemExit(f"run {run_id} failed: {info.message}")
    report = client.download_compute_worker_run_report_json(run_id)
    return time.perf_counter() - started, report


def describe(label: str, seconds: float, report: dict[str, Any]) -> None:
    cache, frames = report["embedding_cache"], report["frames"]
    stages = ", ".join(f"{k} {v:.2f}" for k, v in report["seconds"].items())
    print(
        f"{label}: {seconds:.2f} s; files embedded {cache['files_embedded']}, from cache "
        f"{cache['files_from_cache']}; frames embedded {frames['embedded']}, from cache "
        f"{frames['from_cache']}\n    scheduler seconds: {stages}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=60, help="frames per video")
    parser.add_argument("--size", default="320x180", help="video width x height")
    parser.add_argument("--repeats", type=int, default=3, help="process_all runs to take the median of")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        root = Path(tmp)
        make_sample_bucket(root / "input", args.videos, n_frames=args.frames, size=(width, height))
        print(
            f"{args.videos} videos x {args.frames} frames at {width}x{height} in a local folder; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible"
        )
        stack = Stack(root / "state", port=free_port())
        stack.start()
        try:
            with ApiWorkflowClient(address=stack.address) as client:
                client.create_dataset(dataset_name="bench-cache", dataset_type=DatasetType.VIDEOS)
                client.set_local_config(resource_path=str(root / "input"), purpose=DatasourcePurpose.INPUT)
                client.set_local_config(resource_path=str(root / "pool"), purpose=DatasourcePurpose.LIGHTLY)
                first_s, first = timed_run(client, {})
                describe("first run (baseline, embeds every frame)", first_s, first)
                cached_s = []
                for i in range(args.repeats):
                    seconds, report = timed_run(client, {"datasource": {"process_all": True}})
                    describe(f"process_all run {i + 1} over the unchanged files", seconds, report)
                    if report["frames"]["embedded"] != 0:
                        raise SystemExit("the process_all run embedded frames: the cache did not serve them")
                    cached_s.append(seconds)
        finally:
            stack.stop()
    median = statistics.median(cached_s)
    ratio = first_s / median
    print(
        f"first run {first_s:.2f} s / median process_all run {median:.2f} s = {ratio:.1f}x "
        f"({'meets' if ratio >= 10 else 'misses'} the 10x target)"
    )


if __name__ == "__main__":
    main()
