"""python -m services.scheduler --port 50051 --state-dir DIR --selector ADDR --embedder ADDR[,ADDR...]"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from datapool.cli_migrate import DATABASE_URL_ENV
from datapool.errors import DatapoolError
from datapool.secret_key import KEY_ENV, KEY_FILE_ENV, KEY_FILE_OPTION
from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.common.aio_interceptors import AioTokenInterceptor, AioUnaryCapInterceptor
from services.common.aio_server import AsyncServiceServer
from services.common.observability import add_observability_args, start_observability
from services.common.secrets import SecretKeyError, install_log_scrubbing, load_secret_box
from services.common.startup import add_internal_token_args, internal_token_from_args
from services.common.tls_args import SCHEDULER_CA_HELP, add_tls_args, health_address, tls_from_args
from services.scheduler.async_servicer import AsyncSchedulerServicer
from services.scheduler.async_tags import AsyncPoolTags
from services.scheduler.auth import add_token_file_arg, user_token_interceptor, user_tokens_from_args
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB
from services.scheduler.pipeline import RunPipeline
from services.scheduler.rate_limit import RateLimiter
from services.scheduler.remotes import EmbedderPool, SelectorClient
from services.scheduler.runs import RunManager
from services.scheduler.servicer import SchedulerServicer
from services.scheduler.store.engine import DEFAULT_DB_FILE, default_database_url

log = logging.getLogger("datapool.scheduler")

# Calls in flight at most; past it a call is refused RESOURCE_EXHAUSTED at once instead of
# queueing. Every WatchRun waits for its run's next change in a thread of its own (blocked, no
# GIL): with the former 16 threads, 16 watchers made every later call wait until a run ended
# (bench/load/scenarios.py watch: GetRun past a 60 s deadline).
WORKER_THREADS = 256
# Unary calls in flight at most by default (--max-inflight-calls): above the 50 clients of the
# load scenario (bench/load/scenarios.py reads), far below WORKER_THREADS; at the ~1-1.5 ms of
# event loop each call costs, the calls it admits wait at most ~100 ms for their turn.
MAX_INFLIGHT_CALLS = 64
# Calls that wait on the network (the selector, a cloud datasource) or write the store, at once;
# reads of the store answer on the event loop (services/scheduler/async_servicer.py).
BLOCKING_THREADS = 32


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.scheduler", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--selector", required=True, help="address of the selector service")
    parser.add_argument("--embedder", required=True, help="comma-separated embedder replica addresses")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_ENV),
        help=f"metadata store: sqlite:///PATH (one host) or postgresql://USER:PASSWORD@HOST:PORT/DB "
        f"(several replicas); default ${DATABASE_URL_ENV}, then {DEFAULT_DB_FILE} in --state-dir",
    )
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate the schema on start (`datapool migrate` did); refuse any other version",
    )
    parser.add_argument("--max-concurrent-runs", type=int, default=4)
    parser.add_argument(
        "--schedule-rate-per-minute",
        type=float,
        default=120.0,
        help="ScheduleRun calls a minute per token before RESOURCE_EXHAUSTED (0: no limit)",
    )
    parser.add_argument("--schedule-burst", type=int, default=30, help="ScheduleRun calls at once per token")
    parser.add_argument(
        "--max-inflight-calls",
        type=int,
        default=MAX_INFLIGHT_CALLS,
        help=f"unary calls (all but the streams) answered at once; past it a call is refused "
        f"RESOURCE_EXHAUSTED at once, before it waits past its deadline (default {MAX_INFLIGHT_CALLS}; "
        f"0: only the cap of {WORKER_THREADS} on all calls)",
    )
    parser.add_argument(
        "--embed-idle-s",
        type=float,
        default=300.0,
        help="an embedder stream silent this long while awaited counts as a hung replica: its file "
        "moves to another replica",
    )
    parser.add_argument(
        "--run-lease-s",
        type=float,
        default=30.0,
        help="a run's lease on this replica, renewed every third of it; a replica that stops renewing "
        "(killed, hung) loses its runs to another replica on the same Postgres after this long",
    )
    parser.add_argument(
        "--embed-streams",
        type=int,
        default=0,
        help="files embedded at once over all embedders (default 0: two per --embedder address; "
        "give it when one dns:/// address stands for many embedder pods)",
    )
    parser.add_argument("--log-level", default="INFO")
    add_observability_args(parser)
    parser.add_argument(
        KEY_FILE_OPTION,
        dest="secret_key_file",
        help=f"file holding the Fernet key that encrypts datasource credentials at rest "
        f"(default: ${KEY_FILE_ENV}, then the key itself in ${KEY_ENV})",
    )
    add_internal_token_args(parser)
    add_token_file_arg(parser)
    add_tls_args(parser, SCHEDULER_CA_HELP, server_name=True)
    args = parser.parse_args(argv)
    if args.embed_streams < 0:
        parser.error(f"--embed-streams must be >= 0, got {args.embed_streams}")
    if not 0 <= args.max_inflight_calls <= WORKER_THREADS:
        parser.error(f"--max-inflight-calls must be 0..{WORKER_THREADS}, got {args.max_inflight_calls}")
    start_observability(args, "scheduler", parser.prog)
    install_log_scrubbing()
    internal_token = internal_token_from_args(parser, args)
    tls = tls_from_args(parser, args)
    try:
        box = load_secret_box(args.secret_key_file)
    except SecretKeyError as e:
        parser.exit(2, f"scheduler: {e}\n")
    if box is None:
        log.warning(
            "no secret key (%s, %s or $%s): datasources with credentials will be refused",
            KEY_FILE_OPTION,
            f"${KEY_FILE_ENV}",
            KEY_ENV,
        )

    token = user_tokens_from_args(parser, args)
    try:
        db = MetadataDB(
            args.database_url or default_database_url(args.state_dir), migrate_schema=not args.no_migrate
        )
    except DatapoolError as e:
        parser.exit(2, f"scheduler: {e}\n")
    datasources = DatasourceCatalog(db, box)
    internal_tls = tls.channel() if tls else None
    selector = SelectorClient(args.selector, token=internal_token, tls=internal_tls)
    embedders = EmbedderPool(
        (a.strip() for a in args.embedder.split(",") if a.strip()),
        token=internal_token,
        streams=args.embed_streams or None,
        idle_s=args.embed_idle_s,
        tls=internal_tls,
    )
    runs = RunManager(
        db, RunPipeline(embedders, selector), args.max_concurrent_runs, datasources, lease_s=args.run_lease_s
    )
    limit = RateLimiter(args.schedule_rate_per_minute, args.schedule_burst)
    servicer = SchedulerServicer(db, runs, selector, datasources, schedule_limit=limit)
    blocking = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="scheduler-blocking")
    waits = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="scheduler-watch")
    tags = AsyncPoolTags(args.selector, token=internal_token, tls=internal_tls)
    served = AsyncSchedulerServicer(servicer, blocking, waits, tags)

    shedding = (
        [AioUnaryCapInterceptor(args.max_inflight_calls, "--max-inflight-calls")]
        if args.max_inflight_calls
        else []
    )
    checks = [AioTokenInterceptor(user_token_interceptor(token))] if token else []

    async def serve() -> None:
        # The asyncio server is built on the loop that runs it.
        server = AsyncServiceServer(
            "scheduler",
            f"{args.host}:{args.port}",
            lambda s: scheduler_pb2_grpc.add_SchedulerServicer_to_server(served, s),
            [scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name],
            # The cap first: a refused call costs no token check.
            interceptors=[*shedding, *checks],
            # Clients show no certificate (their token is the credential): TLS without client auth.
            credentials=tls.server(require_client_auth=False) if tls else None,
            health_address=health_address(args),
            max_concurrent_rpcs=WORKER_THREADS,
        )
        try:
            await server.serve_until_signal()
        finally:
            await tags.close()

    if not token:
        log.warning(
            "neither DATAPOOL_TOKEN nor a token file is set: the scheduler accepts calls without a token"
        )
    # Everything start-up made (modules, the store's tables, the servicer) lives as long as the
    # process: frozen out of the collector, a full collection no longer walks it while calls wait
    # (bench/load: full collections stopped the event loop 200-250 ms each under load).
    gc.collect()
    gc.freeze()
    try:
        asyncio.run(serve())
    finally:
        blocking.shutdown(wait=False, cancel_futures=True)
        waits.shutdown(wait=False, cancel_futures=True)
        runs.shutdown()
        selector.close()
        embedders.close()
        db.close()


if __name__ == "__main__":
    main()
