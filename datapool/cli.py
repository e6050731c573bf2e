"""The `datapool` command: `up` (serve the stack), `run` (one run, start to end), `demo`, `gc`, `migrate`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from datapool.cli_gc import add_gc_args, cmd_gc
from datapool.cli_migrate import add_migrate_args, cmd_migrate
from datapool.cli_runs import cmd_demo, cmd_run, stack_from_args
from datapool.cli_view import add_view_args, cmd_view
from datapool.client_models import ApiError
from datapool.cpu_priority import Priority, check_priority
from datapool.stack import EMBEDDER_NICE

DEFAULT_STATE_DIR = Path(".datapool-state")


def _add_running_scheduler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="use a running scheduler instead of starting one")
    p.add_argument(
        "--ca-cert", type=Path, help="with --address: CA certificate of its TLS (default $DATAPOOL_CA_CERT)"
    )


def _add_stack_args(p: argparse.ArgumentParser, port_default: int) -> None:
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="the services' logs (in STATE_DIR/logs): text, or json, one object per line "
        "(default: $DATAPOOL_LOG_FORMAT, else text)",
    )
    p.add_argument(
        "--otel",
        action="store_true",
        help="trace the services' gRPC calls with OpenTelemetry (also $DATAPOOL_OTEL=1; README, Deploy)",
    )
    p.add_argument("--port", type=int, default=port_default, help="scheduler port (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="metadata and logs")
    p.add_argument("--embedders", type=int, default=1, help="embedder replicas (default 1)")
    p.add_argument(
        "--embedder-nice",
        type=_priority("--embedder-nice"),
        default=EMBEDDER_NICE,
        help="the embedders' lower CPU priority: 'idle' (Linux SCHED_IDLE: only CPU time nothing else "
        "wants; default) or a nice increment 0..19. Their video decoding and inference give way to the "
        "scheduler's calls on a shared host",
    )
    p.add_argument(
        "--selection-nice",
        type=_priority("--selection-nice"),
        default=None,
        help="the selector's lower CPU priority for its selections ('idle' or a nice increment 0..19; "
        "default: the selector's, idle): its read calls go first",
    )
    p.add_argument("--backend", default="auto", help="model backend (default: auto)")
    p.add_argument(
        "--http-port",
        type=int,
        help="also serve the Lightly-compatible REST API on this port (lightly's ApiWorkflowClient)",
    )
    p.add_argument(
        "--tls-dir",
        type=Path,
        help="TLS on every hop: a local CA and the services' certificate in this folder, created "
        "once and reused (clients trust DIR/ca.crt: $DATAPOOL_CA_CERT)",
    )


def _priority(flag: str) -> Callable[[str], Priority]:
    def parse(text: str) -> Priority:
        try:
            return check_priority(text, flag)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def cmd_up(args: argparse.Namespace) -> int:
    stack = stack_from_args(args)
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
    if stack.ca_cert is not None:
        print(f"datapool: TLS on; clients trust {stack.ca_cert} (export DATAPOOL_CA_CERT={stack.ca_cert})")
    print(
        "datapool: Prometheus metrics on "
        + ", ".join(f"{name} {url}" for name, url in stack.metrics.items()),
        flush=True,
    )
    stop.wait()
    print("datapool: stopping", flush=True)
    stack.stop()
    print("datapool: stopped", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datapool", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start scheduler, selector and embedder; stop on SIGTERM/SIGINT")
    _add_stack_args(up, 50051)
    up.set_defaults(fn=cmd_up)

    run = sub.add_parser("run", help="bring the stack up, run once over a folder of videos, print a summary")
    _add_stack_args(run, 50051)
    _add_running_scheduler_args(run)
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
    _add_running_scheduler_args(demo)
    demo.add_argument("--dir", type=Path, default=Path("demo-data"))
    demo.add_argument("--frames", type=int, default=40, help="frames per sample video")
    demo.set_defaults(fn=cmd_demo, state_dir=None)

    gc = sub.add_parser(
        "gc", help="delete pool objects no manifest references (left by lost races and crashed commits)"
    )
    add_gc_args(gc)
    gc.set_defaults(fn=cmd_gc, state_dir=DEFAULT_STATE_DIR)

    migrate = sub.add_parser("migrate", help="bring the scheduler's metadata store to this version's schema")
    add_migrate_args(migrate, DEFAULT_STATE_DIR)
    migrate.set_defaults(fn=cmd_migrate)

    view = sub.add_parser("view", help="serve the embedding view of a dataset's pool in a browser")
    add_view_args(view)
    view.set_defaults(fn=cmd_view, state_dir=DEFAULT_STATE_DIR)
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
