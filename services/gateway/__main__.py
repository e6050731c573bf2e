"""`python -m services.gateway --port 8080 --scheduler 127.0.0.1:50051`: the Lightly-compatible REST
gateway (`datapool up --http-port` starts it). Stops gracefully on SIGTERM (uvicorn)."""

from __future__ import annotations

import argparse
import os

import uvicorn

from services.common.logging_setup import LOG_FORMATS, setup_logging
from services.common.observability import LOG_FORMAT_ENV
from services.gateway import access_log
from services.gateway.app import create_app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m services.gateway", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scheduler", required=True, help="scheduler address (host:port)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get(LOG_FORMAT_ENV) or "text",
        help=f"text (uvicorn's), or json: one object per line (default: ${LOG_FORMAT_ENV}, else text)",
    )
    args = p.parse_args(argv)
    app = create_app(args.scheduler)
    json_logs = args.log_format == "json"
    if json_logs:
        # uvicorn's loggers then keep no handlers of their own and reach the root's JSON handler.
        setup_logging(args.log_level, "json")
    access_log.install()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        timeout_graceful_shutdown=5,
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
    )


if __name__ == "__main__":
    main()
