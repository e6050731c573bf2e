"""The scheduler's check of the user's bearer token on every call: $DATAPOOL_TOKEN, or the
tokens in --token-file / $DATAPOOL_TOKEN_FILE (several at once, rotated without a restart)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from services.common.auth import TokenInterceptor
from services.common.token_file import TOKEN_FILE_ENV, TOKEN_FILE_OPTION, TokenFile, TokenFileError

log = logging.getLogger(__name__)

REFUSED = (
    "the token was refused: call with the scheduler's DATAPOOL_TOKEN, or a token in its --token-file "
    "(ApiWorkflowClient(token=...))"
)
MISSING = "the token was refused: no token was sent; pass ApiWorkflowClient(token=...)"


def user_token_interceptor(tokens: str | Callable[[], Sequence[bytes]]) -> TokenInterceptor:
    """`tokens`: $DATAPOOL_TOKEN, or a `TokenFile` (several tokens, rotated without a restart)."""
    return TokenInterceptor(tokens, missing=MISSING, refused=REFUSED)


def add_token_file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        TOKEN_FILE_OPTION,
        dest="token_file",
        type=Path,
        default=None,
        help=f"file of the API tokens clients may send, one a line, re-read when it changes and on "
        f"SIGHUP (rotation without a restart; default ${TOKEN_FILE_ENV}, else the one token in "
        "$DATAPOOL_TOKEN)",
    )


def user_tokens_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> str | TokenFile | None:
    """The token file (watched, and re-read on SIGHUP), else $DATAPOOL_TOKEN, else None (no check)."""
    path = args.token_file or os.environ.get(TOKEN_FILE_ENV) or None
    if path is None:
        return os.environ.get("DATAPOOL_TOKEN") or None
    try:
        tokens = TokenFile(path)
    except TokenFileError as e:
        parser.exit(2, f"{parser.prog}: {e}\n")
    if os.environ.get("DATAPOOL_TOKEN"):
        log.warning(
            "%s is given: $DATAPOOL_TOKEN is not accepted, only the tokens in %s", TOKEN_FILE_OPTION, path
        )
    tokens.reload_on_sighup()
    return tokens
