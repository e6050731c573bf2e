"""`python -m services.selector --port 50052`: the selector service until SIGTERM."""

from __future__ import annotations

import argparse

from datapool.grpc_server import ServiceServer, setup_logging
from services.selector.servicer import SERVICE_NAME, register


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.selector", description=__doc__)
    parser.add_argument("--port", type=int, default=50052)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    ServiceServer("selector", f"{args.host}:{args.port}", register, [SERVICE_NAME]).serve_until_signal()


if __name__ == "__main__":
    main()
