"""Credential files that `datapool up` creates in its state directory (the internal token,
the secret key): readable only by their owner from the first byte, and reused once there."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def ensure_private_file(path: Path, content: Callable[[], bytes]) -> Path:
    """Creates `path` holding `content()`, mode 0600, unless it exists (then it is reused as is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL + mode at creation: the file is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "wb") as f:
        f.write(content())
    return path
