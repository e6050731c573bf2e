"""The `datapool` command: `up` (serve the stack), `run` (one run, start to end), `demo`, `gc`."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from datapool.client import ApiError, ApiWorkflowClient, DatasetType, DatasourcePurpose, RunState
from datapool.run_report import RunReport
from datapool.stack import Stack
from datapool.v1 import common_pb2

DEFAULT_STATE_DIR = Path(".datapool-state")


def _add_stack_args(p: argparse.ArgumentParser, port_default: int) -> None:
    p.add_argument("--port", type=int, default=port_default, help="scheduler port (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="metadata and logs")
    p.add_argument("--embedders", type=int, default=1, help="embedder replicas (default 1)")
    p.add_argument("--backend", default="auto", help="model backend (default: auto)")
    p.add_argument(
        "--http-port",
        type=int,
        help="also serve the Lightly-compatible REST API on this port (lightly's ApiWorkflowClient)",
    )


def cmd_up(args: argparse.Namespace) -> int:
    stack = Stack(
        args.state_dir,
        port=args.port,
        host=args.host,
        embedder_replicas=args.embedders,
        backend=args.backend,
        http_port=args.http_port,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(
        f"datapool: starting scheduler, selector and {args.embedders} embedder(s); logs in "
        f"{stack.state_dir / 'logs'}",
        flush=True,
    )
    try:
        stack.start()
    except RuntimeError as e:
        print(f"datapool: {e}", file=sys.stderr)
        return 1
    rest = f", Lightly REST API on http://{stack.gateway.address}" if stack.gateway else ""
    print(
        f"datapool ready on {stack.address} (selector {stack.selector.address}, embedders "
        f"{', '.join(e.address for e in stack.embedders)}{rest})",
        flush=True,
    )
    stop.wait()
    print("datapool: stopping", flush=True)
    stack.stop()
    print("datapool: stopped", flush=True)
    return 0


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
        with ApiWorkflowClient(address=args.address) as client:
            return int(body(client))
    stack = Stack(
        args.state_dir,
        port=args.port,
        host=args.host,
        embedder_replicas=args.embedders,
        backend=args.backend,
        http_port=args.http_port,
    )
    print("datapool: starting the services (first start loads the model)...", flush=True)
    stack.start()
    try:
        with ApiWorkflowClient(address=stack.address) as client:
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


def pool_location(url: str, args: argparse.Namespace) -> common_pb2.StoreLocation:
    """A pool given as a path or URL, with credentials from options or the standard environment."""
    from datapool.storage import locations

    scheme, sep, rest = url.partition("://")
    if not sep:
        return locations.local_location(str(Path(url).absolute()))
    endpoint = args.endpoint_url or ""
    if scheme == "s3":
        bucket, prefix = locations.parse_bucket_path(url, "s3")
        # Without --role-arn or keys in the environment, the store uses boto3's own chain.
        keyed = not args.role_arn and os.environ.get("AWS_ACCESS_KEY_ID")
        return locations.s3_location(
            bucket,
            prefix,
            region=args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""),
            endpoint_url=endpoint or os.environ.get("AWS_ENDPOINT_URL_S3", ""),
            access_key_id=os.environ["AWS_ACCESS_KEY_ID"] if keyed else "",
            secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "") if keyed else "",
            role_arn=args.role_arn or "",
            external_id=args.external_id or "",
        )
    if scheme == "gs":
        bucket, prefix = locations.parse_bucket_path(url, "gs")
        credentials = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        return locations.gcs_location(
            bucket,
            prefix,
            project_id=args.project or os.environ.get("GOOGLE_CLOUD_PROJECT", ""),
            credentials_json=Path(credentials).read_text() if credentials else "",
            endpoint_url=endpoint or os.environ.get("STORAGE_EMULATOR_HOST", ""),
        )
    if scheme == "azure":
        account, _, container_path = rest.partition("/")
        container, prefix = locations.parse_container_path(container_path)
        return locations.azure_location(
            account,
            container,
            prefix,
            sas_token=args.sas_token or os.environ.get("AZURE_STORAGE_SAS_TOKEN", ""),
            endpoint_url=endpoint,
        )
    raise ValueError(f"--pool {url!r}: use a local path, s3://BUCKET/PREFIX, gs://... or azure://ACCOUNT/...")


def cmd_gc(args: argparse.Namespace) -> int:
    from datapool.errors import DatapoolError
    from datapool.pool.gc import collect_garbage
    from datapool.storage import StoreError, describe_location, open_store

    try:
        location = pool_location(args.pool, args)
        store = open_store(location)
        report = collect_garbage(store, min_age_s=args.min_age, dry_run=args.dry_run)
    except (ValueError, OSError, StoreError, DatapoolError) as e:
        print(f"datapool gc: {e}", file=sys.stderr)
        return 1
    verb = "would delete" if args.dry_run else "deleted"
    for obj in report.deleted:
        print(f"{verb} {obj.key} ({obj.size} bytes, {obj.age_s or 0:.0f}s old)")
    print(
        f"gc of {describe_location(location)}: {verb} {len(report.deleted)} orphaned object(s) "
        f"({report.deleted_bytes} bytes); {len(report.kept_young)} orphan(s) kept, younger than "
        f"{args.min_age:g}s or of unknown age; {report.manifests} manifest(s), "
        f"{report.referenced_data} data object(s) and {report.referenced_frames} frame(s) referenced"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datapool", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start scheduler, selector and embedder; stop on SIGTERM/SIGINT")
    _add_stack_args(up, 50051)
    up.set_defaults(fn=cmd_up)

    run = sub.add_parser("run", help="bring the stack up, run once over a folder of videos, print a summary")
    _add_stack_args(run, 50051)
    run.add_argument("--address", help="use a running scheduler instead of starting one")
    run.add_argument("--input", type=Path, required=True, help="folder of videos (INPUT datasource)")
    run.add_argument("--pool", type=Path, required=True, help="folder of the pool (LIGHTLY datasource)")
    run.add_argument("--n-samples", type=int)
    run.add_argument("--proportion-samples", type=float)
    run.add_argument("--min-distance", type=float, default=0.0)
    run.add_argument("--process-all", action="store_true")
    run.add_argument("--images", action="store_true", help="the input holds images, not videos")
    run.add_argument("--dataset", help="dataset name (default: datapool-<pool folder name>)")
    run.set_defaults(fn=cmd_run)

    demo = sub.add_parser("demo", help="the three-run workflow on generated sample videos")
    _add_stack_args(demo, 50051)
    demo.add_argument("--address", help="use a running scheduler instead of starting one")
    demo.add_argument("--dir", type=Path, default=Path("demo-data"))
    demo.add_argument("--frames", type=int, default=40, help="frames per sample video")
    demo.set_defaults(fn=cmd_demo, state_dir=None)

    gc = sub.add_parser(
        "gc", help="delete pool objects no manifest references (left by lost races and crashed commits)"
    )
    gc.add_argument(
        "--pool",
        required=True,
        help="PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azure://ACCOUNT/CONTAINER/PREFIX",
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    gc.add_argument(
        "--min-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="only delete orphans at least this old, so in-flight commits keep theirs (default %(default)g)",
    )
    gc.add_argument("--endpoint-url", help="S3, GCS or Azure endpoint (emulators, S3-compatible stores)")
    gc.add_argument("--region", help="S3 region (default: $AWS_REGION)")
    gc.add_argument("--role-arn", help="S3: assume this role with the standard AWS credential chain")
    gc.add_argument("--external-id", help="S3: external id for --role-arn")
    gc.add_argument("--project", help="GCS project (default: $GOOGLE_CLOUD_PROJECT)")
    gc.add_argument("--sas-token", help="Azure SAS token (default: $AZURE_STORAGE_SAS_TOKEN)")
    gc.set_defaults(fn=cmd_gc, state_dir=DEFAULT_STATE_DIR)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "state_dir", None) is None:
        args.state_dir = Path(args.dir) / "state" if hasattr(args, "dir") else DEFAULT_STATE_DIR
    try:
        code = args.fn(args)
    except ApiError as e:
        print(f"datapool: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
