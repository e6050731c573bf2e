"""`python -m services.selector --port 50052`: the selector service until SIGTERM."""

from __future__ import annotations

import argparse
import functools
import os

from datapool.cpu_priority import check_priority
from services.common.auth import internal_token_interceptor
from services.common.observability import add_observability_args, start_observability
from services.common.server import ServiceServer
from services.common.startup import add_internal_token_args, internal_token_from_args
from services.common.tls_args import MUTUAL_CA_HELP, add_tls_args, health_address, tls_from_args
from services.selector.cached_loads import DEFAULT_MAX_STAGED_BYTES, StagedCacheLoads
from services.selector.run_vectors import DEFAULT_MAX_RUN_MEMORY_BYTES
from services.selector.selection_priority import DEFAULT_SELECTION_NICE, SelectionThreads
from services.selector.service import SelectorService
from services.selector.servicer import SERVICE_NAME, SelectorServicer, register

# The gRPC server's worker threads, and so the most Selects at once: each one holds a server
# thread while its work runs on a selection thread.
SERVER_THREADS = 16


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.selector", description=__doc__)
    parser.add_argument("--port", type=int, default=50052)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    add_observability_args(parser)
    parser.add_argument(
        "--max-staged-cache-mb",
        type=int,
        default=DEFAULT_MAX_STAGED_BYTES >> 20,
        help="embedding cache vectors held at once between LoadCachedEmbeddings and Select, all "
        "sessions together; files over it are embedded instead (default: %(default)s)",
    )
    parser.add_argument(
        "--max-run-memory-mb",
        type=int,
        default=DEFAULT_MAX_RUN_MEMORY_BYTES >> 20,
        help="candidate vectors one Select holds in memory; the rest go to an unnamed spill file "
        "in --spill-dir, read through memory maps (default: %(default)s)",
    )
    parser.add_argument(
        "--spill-dir", default=None, help="directory of the spill files (default: the system's temp dir)"
    )
    parser.add_argument(
        "--selection-nice",
        default=DEFAULT_SELECTION_NICE,
        help="how much lower each Select's CPU priority is than the other calls': 'idle' (Linux "
        "SCHED_IDLE) or a nice increment 0..19; GetPool and ListProcessedFiles are answered first "
        "while selections fill the cores (default: %(default)s)",
    )
    add_internal_token_args(parser)
    add_tls_args(parser, MUTUAL_CA_HELP)
    args = parser.parse_args(argv)
    try:
        args.selection_nice = check_priority(args.selection_nice, "--selection-nice")
    except ValueError as e:
        parser.error(str(e))
    if args.max_staged_cache_mb < 0:
        parser.error(f"--max-staged-cache-mb must be >= 0, got {args.max_staged_cache_mb}")
    if args.max_run_memory_mb < 0:
        parser.error(f"--max-run-memory-mb must be >= 0, got {args.max_run_memory_mb}")
    if args.spill_dir is not None and not os.path.isdir(args.spill_dir):
        parser.error(f"--spill-dir {args.spill_dir!r} is not a directory")
    start_observability(args, "selector", parser.prog)
    token = internal_token_from_args(parser, args)
    tls = tls_from_args(parser, args)
    loads = StagedCacheLoads(max_bytes=args.max_staged_cache_mb << 20)
    service = SelectorService(
        cached_loads=loads, max_run_memory_bytes=args.max_run_memory_mb << 20, spill_dir=args.spill_dir
    )
    servicer = SelectorServicer(service, SelectionThreads(args.selection_nice, max_workers=SERVER_THREADS))
    serve = functools.partial(register, servicer=servicer)
    interceptors = [internal_token_interceptor(token, "selector")] if token else []
    server = ServiceServer(
        "selector",
        f"{args.host}:{args.port}",
        serve,
        [SERVICE_NAME],
        max_workers=SERVER_THREADS,
        interceptors=interceptors,
        credentials=tls.server(require_client_auth=True) if tls else None,
        health_address=health_address(args),
    )
    server.serve_until_signal()


if __name__ == "__main__":
    main()
