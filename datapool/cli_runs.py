"""`datapool run` and `datapool demo`: one run (or three) from the command line, start to end.

Without `--address` they bring the stack up for the run and down after it; progress shows as
bars while the run goes on, and the run report as a short summary at its end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from datapool.client import ApiWorkflowClient
from datapool.client_models import ApiError, DatasetType, DatasourcePurpose, RunState
from datapool.run_report import RunReport
from datapool.stack import Stack


def stack_from_args(args: argparse.Namespace) -> Stack:
    """The stack `datapool up`, `run` and `demo` start, from their shared options."""
    return Stack(
        args.state_dir,
        port=args.port,
        host=args.host,
        embedder_replicas=args.embedders,
        backend=args.backend,
        http_port=args.http_port,
        log_format=args.log_format,
        otel=args.otel,
        tls_dir=args.tls_dir,
        embedder_nice=args.embedder_nice,
        selection_nice=args.selection_nice,
    )


def _selection_config(n_samples: int | None, proportion: float | None, min_distance: float) -> dict[str, Any]:
    config: dict[str, Any] = {
        "strategies": [
            {
                "input": {"type": "EMBEDDINGS"},
                "strategy": {"type": "DIVERSITY", "stopping_condition_minimum_distance": min_distance},
            }
        ]
    }
    if n_samples is not None:
        config["n_samples"] = n_samples
    if proportion is not None:
        config["proportion_samples"] = proportion
    return config


def follow_run(client: ApiWorkflowClient, run_id: str, quiet: bool = False) -> dict[str, Any]:
    """Shows progress bars until the run ends; returns its report."""
    from tqdm import tqdm

    files_bar: tqdm[Any] | None = None
    frames_bar: tqdm[Any] | None = None
    last_state: RunState | None = None
    for info in client.watch_compute_worker_run(run_id):
        if info.state != last_state:
            last_state = info.state
            tqdm.write(f"[{info.state}] {info.message}")
        if quiet:
            continue
        total = info.progress.get("files_total", 0)
        if total and files_bar is None:
            files_bar = tqdm(total=total, desc="files", unit="file", leave=False)
            frames_bar = tqdm(desc="frames embedded", unit="frame", leave=False)
        if files_bar is not None and frames_bar is not None:
            files_bar.update(info.progress.get("files_done", 0) - files_bar.n)
            frames_bar.update(info.progress.get("frames_embedded", 0) - frames_bar.n)
    for bar in (files_bar, frames_bar):
        if bar is not None:
            bar.close()
    final = client.get_compute_worker_run_info(run_id)
    if final.state != last_state:
        tqdm.write(f"[{final.state}] {final.message}")
    return client.download_compute_worker_run_report_json(run_id)


def print_summary(report_json: dict[str, Any]) -> None:
    """The run report in a few lines; a failed run's report has only its error, so counts show 0."""
    report = RunReport.from_json(report_json)
    files, frames = report.files, report.frames
    print("run summary")
    print(
        f"  files listed {files.listed}, new {files.new}, "
        f"processed {len(files.processed)}, skipped {len(files.skipped)}"
    )
    for s in files.skipped:
        print(f"    skipped {s.path}: {s.reason}")
    print(
        f"  frames embedded {frames.embedded}, from the embedding cache "
        f"{frames.from_cache}, selected {frames.selected}"
    )
    pool = asdict(report.pool_after) if report.pool_after is not None else {}
    print(f"  tag {report.tag or '(none: no frames added)'}; pool now {pool}")
    if report.seconds:
        print("  seconds " + ", ".join(f"{k} {v:.2f}" for k, v in report.seconds.items()))


def _ensure_dataset(client: ApiWorkflowClient, name: str, dataset_type: DatasetType) -> None:
    try:
        client.set_dataset_id_by_name(name)
    except ApiError as e:
        if e.code.name != "NOT_FOUND":
            raise
        client.create_dataset(dataset_name=name, dataset_type=dataset_type)


def run_once(
    client: ApiWorkflowClient,
    input_dir: Path,
    pool_dir: Path,
    selection: dict[str, Any],
    process_all: bool,
    dataset: str,
    dataset_type: DatasetType = DatasetType.VIDEOS,
) -> dict[str, Any]:
    _ensure_dataset(client, dataset, dataset_type)
    client.set_local_config(resource_path=str(input_dir), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(pool_dir), purpose=DatasourcePurpose.LIGHTLY)
    worker: dict[str, Any] = {"enable_training": False}
    if process_all:
        worker["datasource"] = {"process_all": True}
    run_id = client.schedule_compute_worker_run(worker_config=worker, selection_config=selection)
    return follow_run(client, run_id)


def _with_stack(args: argparse.Namespace, body: Any) -> int:
    if args.address:
        with ApiWorkflowClient(address=args.address, ca_cert=args.ca_cert) as client:
            return int(body(client))
    stack = stack_from_args(args)
    print("datapool: starting the services (first start loads the model)...", flush=True)
    stack.start()
    try:
        with ApiWorkflowClient(address=stack.address, ca_cert=stack.ca_cert) as client:
            return int(body(client))
    finally:
        stack.stop()


def cmd_run(args: argparse.Namespace) -> int:
    if args.n_samples is None and args.proportion_samples is None and args.min_distance == 0:
        print("datapool run: give --n-samples, --proportion-samples or --min-distance > 0", file=sys.stderr)
        return 2
    selection = _selection_config(args.n_samples, args.proportion_samples, args.min_distance)
    dataset = args.dataset or f"datapool-{Path(args.pool).absolute().name}"

    def body(client: ApiWorkflowClient) -> int:
        kind = DatasetType.IMAGES if args.images else DatasetType.VIDEOS
        report = run_once(client, args.input, args.pool, selection, args.process_all, dataset, kind)
        print_summary(report)
        return 0 if report.get("state") == "COMPLETED" else 1

    return _with_stack(args, body)


def cmd_demo(args: argparse.Namespace) -> int:
    from datapool.samples import make_corrupt_file, make_video

    root: Path = args.dir.absolute()
    if root.exists():
        shutil.rmtree(root)
    videos, pool = root / "input" / "videos", root / "lightly"
    videos.mkdir(parents=True)
    for i in range(3):
        make_video(videos / f"campus{i}-c0.mp4", scene_seed=i, n_frames=args.frames)
    make_corrupt_file(videos / "broken.mp4", kind="random")
    print(f"demo: generated 3 videos and one corrupt file in {videos}")

    def body(client: ApiWorkflowClient) -> int:
        dataset = "pedestrian-videos-datapool"
        steps = [
            ("run 1: three videos, min distance 0.1", 0.1, False),
            ("run 2: two videos added, min distance 0.2 (only the new ones are decoded)", 0.2, False),
            ("run 3: process_all, min distance 0.2 (every video examined again)", 0.2, True),
        ]
        for n, (title, dist, process_all) in enumerate(steps):
            if n == 1:
                for i in (3, 4):
                    make_video(videos / f"campus{i}-c0.mp4", scene_seed=i, n_frames=args.frames)
            print(f"\n=== {title}")
            report = run_once(client, videos, pool, _selection_config(100, None, dist), process_all, dataset)
            print_summary(report)
            if report.get("state") != "COMPLETED":
                return 1
        print("\ntags (newest first):")
        for tag in client.get_all_tags():
            print(f"  {tag.name}: {tag.frame_count} frame(s)")
        csv_path = root / "embeddings.csv"
        client.download_embeddings_csv(str(csv_path))
        print(f"pool frames are PNGs under {pool / 'frames'}; embeddings in {csv_path}")
        return 0

    return _with_stack(args, body)
