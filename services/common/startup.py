"""Command-line glue for the internal token, the same in all three services.

A service refuses to start without a token unless told so explicitly: a deployment
that forgot to mount the secret must not end up with an open selector or embedder.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from datapool.internal_token import (
    INSECURE_OPTION,
    TOKEN_FILE_ENV,
    TOKEN_FILE_OPTION,
    InternalTokenError,
    read_token_file,
)

log = logging.getLogger(__name__)


def add_internal_token_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        TOKEN_FILE_OPTION,
        dest="internal_token_file",
        type=Path,
        default=None,
        help=f"file holding the token the scheduler shows the selector and embedders "
        f"(default: ${TOKEN_FILE_ENV}); `datapool up` creates one in its state directory",
    )
    parser.add_argument(
        INSECURE_OPTION,
        dest="insecure_no_internal_token",
        action="store_true",
        help="run without an internal token: anyone who reaches the selector's and embedders' "
        "ports can call them. Only for a single-user machine or a test",
    )


def internal_token_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The token named by the flag or the environment; None only with the insecure flag.

    Exits (status 2) with a message naming the flag when neither is given or the file is unusable.
    """
    path = args.internal_token_file or os.environ.get(TOKEN_FILE_ENV) or None
    if path and args.insecure_no_internal_token:
        parser.exit(
            2,
            f"{parser.prog}: give {TOKEN_FILE_OPTION} (or ${TOKEN_FILE_ENV}) or {INSECURE_OPTION}, "
            "not both\n",
        )
    if path:
        try:
            return read_token_file(path)
        except InternalTokenError as e:
            parser.exit(2, f"{parser.prog}: {e}\n")
    if not args.insecure_no_internal_token:
        parser.exit(
            2,
            f"{parser.prog}: no internal token: pass {TOKEN_FILE_OPTION} FILE or set ${TOKEN_FILE_ENV} "
            f"(`datapool up` does this), or start with {INSECURE_OPTION} to let anyone who can reach "
            "the services call them\n",
        )
    log.warning("%s: the selector and embedders accept calls without credentials", INSECURE_OPTION)
    return None
