"""`datapool view`: serve the embedding view of a dataset's pool (read-only) in a browser."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from datapool.view.projection import METHODS


def add_view_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="the scheduler (default: $DATAPOOL_ADDRESS, then 127.0.0.1:50051)")
    p.add_argument("--token", help="the scheduler's token (default: $DATAPOOL_TOKEN)")
    p.add_argument("--ca-cert", help="CA certificate of a TLS scheduler (default: $DATAPOOL_CA_CERT)")
    p.add_argument("--dataset", help="open this dataset's view (default: a list of datasets)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default %(default)s)")
    p.add_argument(
        "--method", choices=METHODS, default="pca", help="default projection (default %(default)s)"
    )


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_view(args: argparse.Namespace) -> int:
    # The page has no login of its own: it shows the pool to whoever reaches it, with the
    # scheduler token it was given. Served on loopback only, so no data leaves this host
    # without credentials (reach it from elsewhere through an authenticated tunnel or proxy).
    if not _loopback(args.host):
        print(
            f"datapool view: --host {args.host!r} is not a loopback address; the view has no login of "
            "its own, so it serves only 127.0.0.1, ::1 or localhost",
            file=sys.stderr,
        )
        return 2
    # Imported here: FastAPI takes a second or two to import, which every other command would pay.
    import uvicorn

    from datapool.view.app import create_app
    from datapool.view.grpc_source import GrpcViewSource

    source = GrpcViewSource(args.address, args.token, args.ca_cert)
    dataset = f"{args.dataset}?method={args.method}" if args.dataset else None
    app = create_app(source, dataset)
    where = f"http://{args.host}:{args.port}/" + (f"datasets/{dataset}" if dataset else "")
    print(f"datapool view on {where} (read-only; Ctrl-C stops it)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        source.close()
    return 0
