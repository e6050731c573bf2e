"""The scheduler's CPU cost of one read call, in this process (README, "Load").

    .venv/bin/python bench/load/read_cost.py [--calls 2000] [--profile GetRun] [--server threaded]

Builds the scheduler's server as `services.scheduler.__main__` does (the same ServiceServer, its
interceptors, a token file, a SQLite store) with 20 datasets and a finished run whose report
lists 200 files, and times `calls` calls of GetRun, GetDataset and ListDatasets:
- `loopback`: a real gRPC call over 127.0.0.1 from a client in this process; CPU ms per call is
  this process's CPU (server and client together) over the calls;
- `server python`: what the server runs in Python for one call, without the transport: the
  interceptor pipeline finds the handler, the request is decoded, the handler answers, the reply
  is encoded (what `--profile METHOD` shows under cProfile, sorted by cumulative time).
No selector runs, so ListTags (one selector call) is not measured here; `scenarios.py reads` has it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "scheduler")]

import grpc  # noqa: E402
from aio_serving import aio_scheduler  # noqa: E402
from grpc._interceptor import service_pipeline  # noqa: E402

from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc  # noqa: E402
from services.common.aio_interceptors import AioTokenInterceptor  # noqa: E402
from services.common.rpc_metrics import RpcMetricsInterceptor  # noqa: E402
from services.common.server import ServiceServer  # noqa: E402
from services.common.status import DomainErrorInterceptor  # noqa: E402
from services.common.token_file import TokenFile  # noqa: E402
from services.scheduler.async_servicer import AsyncSchedulerServicer  # noqa: E402
from services.scheduler.async_tags import AsyncPoolTags  # noqa: E402
from services.scheduler.auth import user_token_interceptor  # noqa: E402
from services.scheduler.datasources import DatasourceCatalog  # noqa: E402
from services.scheduler.db import MetadataDB  # noqa: E402
from services.scheduler.remotes import SelectorClient  # noqa: E402
from services.scheduler.servicer import SchedulerServicer  # noqa: E402

TOKEN = "read-cost-bench-token-0123456789"
METADATA = (("authorization", f"Bearer {TOKEN}"),)


def _fill(db: MetadataDB) -> tuple[str, str]:
    """20 datasets; a COMPLETED run on the first with progress, tags and a 200-file report."""
    ids = [db.create_dataset(f"ds-{i:02d}", scheduler_pb2.IMAGES).id for i in range(20)]
    run = db.create_run(ids[0], scheduler_pb2.OPEN, {"worker": {}, "selection": {"n_samples": 100}})
    report = {
        "files": [{"name": f"input/file-{i:04d}.png", "frames": 1, "seconds": 0.01 * i} for i in range(200)],
        "selection": {"picked": 100, "strategy": "DIVERSITY"},
    }
    db.update_run(
        run.id,
        state=scheduler_pb2.COMPLETED,
        message="completed",
        progress={"files_total": 200, "files_done": 200, "frames_selected": 100},
        report=report,
        tag_names=["run-1"],
        pool_version=1,
    )
    return ids[0], run.id


def _requests(dataset_id: str, run_id: str) -> dict[str, Any]:
    return {
        "GetRun": scheduler_pb2.GetRunRequest(run_id=run_id),
        "GetDataset": scheduler_pb2.GetDatasetRequest(id=dataset_id),
        "ListDatasets": scheduler_pb2.ListDatasetsRequest(),
    }


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = METADATA


class _Context:
    """What the interceptors and the servicer ask of a ServicerContext on a successful read."""

    def code(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return METADATA


def _direct_caller(servicer: SchedulerServicer, tokens: TokenFile) -> Callable[[str, bytes], bytes]:
    handlers: dict[str, Any] = {}

    class _Capture:
        def add_generic_rpc_handlers(self, generic: Any) -> None:
            pass

        def add_registered_method_handlers(self, service: str, methods: dict[str, Any]) -> None:
            handlers.update({f"/{service}/{name}": h for name, h in methods.items()})

    scheduler_pb2_grpc.add_SchedulerServicer_to_server(servicer, cast(grpc.Server, _Capture()))
    pipeline = service_pipeline(
        [RpcMetricsInterceptor(), user_token_interceptor(tokens), DomainErrorInterceptor()]
    )
    assert pipeline is not None
    context = cast(grpc.ServicerContext, _Context())

    def call(method: str, request: bytes) -> bytes:
        details = cast(grpc.HandlerCallDetails, _Details(method))
        handler: Any = pipeline.execute(lambda d: handlers.get(d.method), details)
        reply = handler.unary_unary(handler.request_deserializer(request), context)
        return cast(bytes, handler.response_serializer(reply))

    return call


def _serve(kind: str, servicer: SchedulerServicer, tokens: TokenFile) -> tuple[int, Callable[[], None]]:
    """The server on a free port, and how to stop it: the asyncio one on a loop in a thread of its
    own (reads on the loop, as services.scheduler serves them), or the threaded one."""
    if kind == "threaded":
        server = ServiceServer(
            "scheduler",
            "127.0.0.1:0",
            lambda s: scheduler_pb2_grpc.add_SchedulerServicer_to_server(servicer, s),
            ["datapool.v1.Scheduler"],
            interceptors=[user_token_interceptor(tokens)],
            max_workers=16,
        )
        server.start()
        return server.port, lambda: server.stop(0)
    pool = ThreadPoolExecutor(4)
    served = AsyncSchedulerServicer(servicer, pool, pool, AsyncPoolTags("127.0.0.1:1"))
    stack = contextlib.ExitStack()
    aio_server = stack.enter_context(
        aio_scheduler(served, [AioTokenInterceptor(user_token_interceptor(tokens))])
    )

    def stop() -> None:
        stack.close()
        pool.shutdown()

    return aio_server.port, stop


def _time(label: str, calls: int, one: Callable[[], object]) -> None:
    for _ in range(min(200, calls)):  # warm-up: compiled statements, pool connections
        one()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        one()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"  {label:28s} {1000 * cpu / calls:6.3f} CPU ms/call  {1000 * wall / calls:6.3f} wall ms/call")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", choices=["GetRun", "GetDataset", "ListDatasets"], default=None)
    parser.add_argument(
        "--server",
        choices=["asyncio", "threaded"],
        default="asyncio",
        help="the scheduler's asyncio server (as served) or the threaded one it replaced",
    )
    args = parser.parse_args()
    one, five, fifteen = os.getloadavg()
    print(f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "tokens"
        token_file.write_text(TOKEN + "\n")
        tokens = TokenFile(token_file)
        db = MetadataDB(f"sqlite:///{tmp}/state/datapool.sqlite3")
        dataset_id, run_id = _fill(db)
        selector = SelectorClient("127.0.0.1:1")  # never called by these methods
        # GetRun, GetDataset and ListDatasets never touch the run manager.
        servicer = SchedulerServicer(db, cast(Any, None), selector, DatasourceCatalog(db, None))
        requests = _requests(dataset_id, run_id)
        direct = _direct_caller(servicer, tokens)
        if args.profile:
            method, body = (
                f"/datapool.v1.Scheduler/{args.profile}",
                requests[args.profile].SerializeToString(),
            )
            profile = cProfile.Profile()
            profile.runcall(lambda: [direct(method, body) for _ in range(args.calls)])
            pstats.Stats(profile).sort_stats("cumulative").print_stats(35)
            return

        port, stop = _serve(args.server, servicer, tokens)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        try:
            for name, request in requests.items():
                print(name)
                body = request.SerializeToString()
                path = f"/datapool.v1.Scheduler/{name}"
                _time(
                    "loopback (server + client)",
                    args.calls,
                    partial(getattr(stub, name), request, metadata=METADATA),
                )
                _time("server python", args.calls, partial(direct, path, body))
        finally:
            channel.close()
            stop()
            selector_channel = getattr(selector, "_channel", None)
            if selector_channel is not None:
                selector_channel.close()
            db.close()


if __name__ == "__main__":
    main()
