"""The internal token: the credential the scheduler shows the selector and the embedders.

`datapool up` creates one in its state directory; a deployment mounts one from a secret.
It travels only as a file path (flag or environment), never as a command-line value, so
that `ps` and logs never show it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from datapool.private_file import ensure_private_file

TOKEN_FILE_OPTION = "--internal-token-file"
TOKEN_FILE_ENV = "DATAPOOL_INTERNAL_TOKEN_FILE"
INSECURE_OPTION = "--insecure-no-internal-token"
# 32 random bytes as url-safe base64 (43 characters); shorter tokens are refused.
MIN_TOKEN_CHARS = 16


class InternalTokenError(Exception):
    """The token file is missing, unreadable or holds no usable token; the message names it."""


def ensure_token_file(path: Path) -> Path:
    """Creates a fresh token file readable only by its owner, unless one exists (then it is reused)."""
    return ensure_private_file(path, lambda: (secrets.token_urlsafe(32) + "\n").encode())


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in `path` (surrounding whitespace dropped, as a mounted secret may end in a newline)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise InternalTokenError(f"cannot read the internal token file {path}: {e}") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise InternalTokenError(
            f"the internal token file {path} must hold one token of at least {MIN_TOKEN_CHARS} "
            "characters without spaces (for example: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )
    return token
