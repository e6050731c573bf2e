"""`python -m services.embedder`: one embedder replica.

The model is loaded (and run once) before the server starts, so the health
check reports SERVING only once a request can be served at full speed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from datapool.errors import DatapoolError
from services.common.observability import add_observability_args, start_observability
from services.common.startup import add_internal_token_args, internal_token_from_args
from services.common.tls_args import MUTUAL_CA_HELP, add_tls_args, health_address, tls_from_args
from services.embedder.backends import BACKEND_NAMES, BackendOptions, load_backend
from services.embedder.backends.tensorrt_engine import CACHE_ENV
from services.embedder.hwdecode import use_device
from services.embedder.locations_guard import ALLOWED_ROOTS_ENV, AllowedRoots
from services.embedder.server import make_server

log = logging.getLogger("services.embedder")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.embedder", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50053, help="0 picks a free port")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_NAMES,
        help="model backend for requests that name none; auto picks the fastest this machine runs",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    parser.add_argument(
        "--device", type=int, default=0, help="CUDA device index for GPU backends and GPU video decoding"
    )
    parser.add_argument(
        "--trt-cache",
        type=Path,
        default=None,
        help=f"folder for built TensorRT engines (default: ${CACHE_ENV} or ~/.cache/datapool/trt)",
    )
    parser.add_argument(
        "--gpu-resize",
        action="store_true",
        help="GPU backends: resize frames on the GPU, not in the decoder (less CPU per frame; "
        "vectors differ from other backends', so they get their own model id)",
    )
    parser.add_argument(
        "--allowed-root",
        dest="allowed_roots",
        action="append",
        type=Path,
        default=None,
        help=f"a folder local datasources (input videos, pool frames) must lie in; repeatable "
        f"(default: ${ALLOWED_ROOTS_ENV}, '{os.pathsep}'-separated; neither: no restriction)",
    )
    parser.add_argument("--log-level", default="INFO")
    add_observability_args(parser)
    parser.add_argument(
        "--port-file", type=Path, default=None, help="write the bound port here (useful with --port 0)"
    )
    add_internal_token_args(parser)
    add_tls_args(parser, MUTUAL_CA_HELP)
    args = parser.parse_args(argv)
    # Checked before the model loads, so a missing token fails in a second, not a minute.
    args.internal_token = internal_token_from_args(parser, args)
    args.tls = tls_from_args(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_observability(args, "embedder", "python -m services.embedder")
    options = BackendOptions(
        threads=args.threads, trt_cache=args.trt_cache, device=args.device, gpu_resize=args.gpu_resize
    )
    use_device(args.device)
    try:
        backend = load_backend(args.backend, options, key="--backend")
    except DatapoolError as e:
        log.error("%s", e)
        return 2
    log.info("model %s on backend %s (%s)", backend.model_id, backend.name, backend.reason)
    # The first call pays for kernel selection and allocation; keep that off the first request.
    backend.warm_up()
    allowed = AllowedRoots.of(args.allowed_roots) if args.allowed_roots else AllowedRoots.from_env()
    if allowed.roots:
        log.info("local datasources allowed only in %s", ", ".join(map(str, allowed.roots)))
    server = make_server(
        backend,
        f"{args.host}:{args.port}",
        options=options,
        internal_token=args.internal_token,
        allowed=allowed,
        credentials=args.tls.server(require_client_auth=True) if args.tls else None,
        health_address=health_address(args),
    )
    if args.port_file is not None:
        args.port_file.write_text(f"{server.port}\n")
    server.serve_until_signal()
    return 0


if __name__ == "__main__":
    sys.exit(main())
