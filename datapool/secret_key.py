"""The secret key that encrypts datasource credentials in the scheduler's database: where
the scheduler finds it, and creating one for `datapool up`. The encryption itself is
`services.common.secrets`."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from datapool.private_file import ensure_private_file

KEY_ENV = "DATAPOOL_SECRET_KEY"
KEY_FILE_ENV = "DATAPOOL_SECRET_KEY_FILE"
KEY_FILE_OPTION = "--secret-key-file"


def ensure_key_file(path: Path) -> Path:
    """Creates a fresh key file readable only by its owner, unless one exists."""
    return ensure_private_file(path, lambda: Fernet.generate_key() + b"\n")
