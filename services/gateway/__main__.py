"""`python -m services.gateway --port 8080 --scheduler 127.0.0.1:50051`: the Lightly-compatible REST
gateway (`datapool up --http-port` starts it). Stops gracefully on SIGTERM (uvicorn)."""

from __future__ import annotations

import argparse

import uvicorn

from services.gateway import access_log
from services.gateway.app import create_app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m services.gateway", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scheduler", required=True, help="scheduler address (host:port)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    app = create_app(args.scheduler)
    access_log.install()
    uvicorn.run(
        app, host=args.host, port=args.port, log_level=args.log_level.lower(), timeout_graceful_shutdown=5
    )


if __name__ == "__main__":
    main()
