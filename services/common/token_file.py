"""The scheduler's API tokens from a file, so they can be rotated without a restart.

One token a line (blank lines and `#` comments skipped). The file is re-read when it changes —
a `stat` per call compares its inode, size and change times, which also catches a Kubernetes
Secret update (the kubelet swaps a symlink) — and on SIGHUP (for a change within the clock tick
of the last read, which `stat` cannot tell). Rotation: add the new
token as a second line, move the clients over, delete the old line.

A file that turns unreadable or empty keeps the tokens read last (logged): a half-written
update must not lock every client out, nor let anyone in.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

TOKEN_FILE_OPTION = "--token-file"
TOKEN_FILE_ENV = "DATAPOOL_TOKEN_FILE"
MIN_TOKEN_CHARS = 16

log = logging.getLogger(__name__)


class TokenFileError(Exception):
    """The token file is unreadable or holds no usable token; the message names it and the line."""


def parse_tokens(path: Path) -> tuple[bytes, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TokenFileError(f"cannot read the token file {path}: {e}") from None
    tokens = []
    for n, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise TokenFileError(
                f"the token file {path}, line {n}: a token is one word of at least {MIN_TOKEN_CHARS} "
                "characters (for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        tokens.append(token.encode())
    if not tokens:
        raise TokenFileError(f"the token file {path} holds no token (one a line)")
    return tuple(tokens)


class TokenFile:
    """The tokens accepted now; call the instance for them (a `TokenInterceptor` source)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._tokens = parse_tokens(self.path)  # a bad file at start stops the service

    def __call__(self) -> tuple[bytes, ...]:
        if self._stat() != self._stamp:
            self.reload()
        return self._tokens

    def reload(self) -> None:
        with self._lock:
            stamp = self._stat()
            try:
                tokens = parse_tokens(self.path)
            except TokenFileError as e:
                log.error("%s; still accepting the %d token(s) read before", e, len(self._tokens))
                self._stamp = stamp  # not again on every call; the next change is tried again
                return
            if tokens != self._tokens:
                log.info("token file %s re-read: %d token(s) accepted", self.path, len(tokens))
            self._tokens, self._stamp = tokens, stamp

    def reload_on_sighup(self) -> None:
        """SIGHUP re-reads the file (the usual way to tell a daemon to reload; the default would end it)."""
        signal.signal(signal.SIGHUP, lambda _signum, _frame: self.reload())

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
