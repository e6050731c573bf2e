"""`datapool view`: serve the embedding view of a dataset's pool (read-only) in a browser."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import sys

from datapool.view.access import TOKEN_ENV
from datapool.view.projection import METHODS


def add_view_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="the scheduler (default: $DATAPOOL_ADDRESS, then 127.0.0.1:50051)")
    p.add_argument("--token", help="the scheduler's token (default: $DATAPOOL_TOKEN)")
    p.add_argument("--ca-cert", help="CA certificate of a TLS scheduler (default: $DATAPOOL_CA_CERT)")
    p.add_argument("--dataset", help="open this dataset's view (default: a list of datasets)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default %(default)s)")
    p.add_argument(
        "--view-token",
        help="the token the page asks for (default: $DATAPOOL_VIEW_TOKEN, else a new random one); "
        "printed with the address",
    )
    p.add_argument(
        "--projection",
        "--method",
        dest="method",
        choices=METHODS,
        default="pca",
        help="default projection: pca, umap (umap-learn) or tsne (scikit-learn) (default %(default)s)",
    )


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_view(args: argparse.Namespace) -> int:
    # The page asks for a token of its own (access.py), and is served on loopback only: reach it
    # from elsewhere through an authenticated tunnel or proxy.
    if not _loopback(args.host):
        print(
            f"datapool view: --host {args.host!r} is not a loopback address; the view serves only "
            "127.0.0.1, ::1 or localhost (its token travels in plain HTTP)",
            file=sys.stderr,
        )
        return 2
    # Imported here: FastAPI takes a second or two to import, which every other command would pay.
    import uvicorn

    from datapool.view.app import create_app
    from datapool.view.grpc_source import GrpcViewSource

    source = GrpcViewSource(args.address, args.token, args.ca_cert)
    dataset = f"{args.dataset}?method={args.method}" if args.dataset else None
    # Given (--view-token, $DATAPOOL_VIEW_TOKEN) to keep one address across restarts; else new each time.
    token = args.view_token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    app = create_app(source, dataset, access_token=token)
    where = f"http://{args.host}:{args.port}/" + (f"datasets/{dataset}" if dataset else "")
    join = "&" if "?" in where else "?"
    # The address with its token goes to the user's terminal only, as Jupyter's does; never to a log.
    print(f"datapool view on {where}{join}token={token} (read-only; Ctrl-C stops it)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        source.close()
    return 0
