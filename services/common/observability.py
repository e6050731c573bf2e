"""Command-line glue for logs, metrics and traces, the same in all three services.

`--log-format`, `--metrics-port` and `--otel`; `start_observability` runs before anything
else builds a server or opens a channel, since tracing instruments those as they are made.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from services.common.logging_setup import LOG_FORMATS, setup_logging
from services.common.metrics import serve_metrics
from services.common.tracing import OTEL_ENV, setup_tracing, tracing_requested

LOG_FORMAT_ENV = "DATAPOOL_LOG_FORMAT"


def add_observability_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get(LOG_FORMAT_ENV) or "text",
        help=f"text, or json: one object per line with time, level, logger, message "
        f"(default: ${LOG_FORMAT_ENV}, else text)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (default 0: off)",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help=f"trace gRPC calls with OpenTelemetry (also ${OTEL_ENV}=1); spans go to "
        "$OTEL_EXPORTER_OTLP_ENDPOINT, or to stderr with $OTEL_TRACES_EXPORTER=console",
    )


def start_observability(args: argparse.Namespace, service: str, prog: str) -> None:
    """Sets up logging, serves metrics on `args.host` when a port is given, and starts tracing if asked.

    Exits (status 2) with a message naming the flag when the metrics port is out of range or taken.
    """
    if args.log_format not in LOG_FORMATS:  # a bad $DATAPOOL_LOG_FORMAT skips argparse's check
        _exit(f"{prog}: ${LOG_FORMAT_ENV} must be one of {', '.join(LOG_FORMATS)}\n")
    setup_logging(args.log_level, args.log_format)
    if not 0 <= args.metrics_port <= 65535:
        _exit(f"{prog}: --metrics-port must be 0..65535, got {args.metrics_port}\n")
    if args.metrics_port:
        try:
            serve_metrics(args.host, args.metrics_port, service)
        except OSError as e:
            _exit(f"{prog}: --metrics-port {args.metrics_port}: cannot serve there: {e}\n")
    if tracing_requested(args.otel):
        try:
            setup_tracing(service)
        except ValueError as e:
            _exit(f"{prog}: {e}\n")


def _exit(message: str) -> NoReturn:
    sys.stderr.write(message)
    sys.exit(2)
