"""Datasource credentials at rest and in text: encrypted in the scheduler's database,
scrubbed from every message, report and log line.

The scheduler encrypts the whole serialized `StoreLocation` (not single fields), so a
field added to the protos later cannot leak by being forgotten here. Where the key comes
from (and creating one for `datapool up`) is `datapool.secret_key`.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from datapool.secret_key import KEY_ENV, KEY_FILE_ENV
from datapool.v1 import common_pb2

# Marks an encrypted row; a serialized StoreLocation starts with a field tag byte
# (0x0a..0x22), never with this.
_ENCRYPTED_PREFIX = b"enc1:"
MASK = "***"
# How many opened values a SecretBox remembers (datasource rows: two per dataset).
OPENED_MAX = 1024

log = logging.getLogger(__name__)


class SecretKeyError(Exception):
    """The secret key is missing, malformed or not the one that encrypted a row."""


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) around serialized datasource locations."""

    def __init__(self, key: bytes | str) -> None:
        # The values opened so far (sealed -> plaintext, at most OPENED_MAX): the scheduler opens
        # the same datasource rows on every ListTags, and Fernet's HMAC + AES cost more than the
        # call's query (bench/load). Plaintexts already live in memory as long (the scrubber).
        self._opened: dict[bytes, bytes] = {}
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError(
                "the secret key is not a valid Fernet key (32 url-safe base64-encoded bytes); "
                "create one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    def seal(self, plaintext: bytes) -> bytes:
        return _ENCRYPTED_PREFIX + self._fernet.encrypt(plaintext)

    def open(self, sealed: bytes) -> bytes:
        opened = self._opened.get(sealed)
        if opened is not None:
            return opened
        if not is_sealed(sealed):
            raise SecretKeyError("not an encrypted value")
        try:
            opened = self._fernet.decrypt(sealed[len(_ENCRYPTED_PREFIX) :])
        except InvalidToken:
            raise SecretKeyError("wrong secret key: it cannot decrypt this value") from None
        if len(self._opened) >= OPENED_MAX:
            self._opened.clear()
        self._opened[sealed] = opened
        return opened


def is_sealed(value: bytes) -> bool:
    return value.startswith(_ENCRYPTED_PREFIX)


def load_secret_box(key_file: str | os.PathLike[str] | None = None) -> SecretBox | None:
    """The key from `key_file`, else $DATAPOOL_SECRET_KEY_FILE, else $DATAPOOL_SECRET_KEY; None if unset."""
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if path:
        p = Path(path)
        try:
            raw = p.read_bytes().strip()
        except OSError as e:
            raise SecretKeyError(f"cannot read the secret key file {p}: {e.strerror}") from None
        mode = p.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("secret key file %s is readable by others; chmod 600 it", p)
        try:
            return SecretBox(raw)
        except SecretKeyError as e:
            raise SecretKeyError(f"{p}: {e}") from None
    env_key = os.environ.get(KEY_ENV)
    if env_key:
        try:
            return SecretBox(env_key.strip())
        except SecretKeyError as e:
            raise SecretKeyError(f"${KEY_ENV}: {e}") from None
    return None


# -- what is secret in a location -------------------------------------------------


def secret_values(location: common_pb2.StoreLocation) -> list[str]:
    """Every string in `location` that must never appear in text (non-empty ones only)."""
    kind = location.WhichOneof("kind")
    values: list[str] = []
    if kind == "s3":
        auth = location.s3.WhichOneof("auth")
        if auth == "access_key":
            values += [location.s3.access_key.secret_access_key, location.s3.access_key.access_key_id]
        elif auth == "delegated_role":
            values.append(location.s3.delegated_role.external_id)
    elif kind == "gcs":
        values.append(location.gcs.credentials_json)
        values += _json_secrets(location.gcs.credentials_json)
    elif kind == "azure":
        token = location.azure.sas_token
        values.append(token)
        values.append(token.lstrip("?"))
        values += re.findall(r"(?:^|[?&])sig=([^&]+)", token)
    # Short strings would scrub innocent text; real credentials are long.
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


def _json_secrets(text: str) -> list[str]:
    import json

    try:
        obj = json.loads(text) if text else None
    except ValueError:
        return []
    if not isinstance(obj, dict):
        return []
    out = []
    for field in ("private_key", "private_key_id", "client_secret", "refresh_token"):
        v = obj.get(field)
        if isinstance(v, str):
            out.append(v)
            # A PEM key also shows up line by line in tracebacks and escaped in JSON text.
            out += [line for line in v.splitlines() if len(line) >= 16]
            out.append(v.replace("\n", "\\n"))
    return out


def has_credentials(location: common_pb2.StoreLocation) -> bool:
    return bool(secret_values(location))


def redacted(location: common_pb2.StoreLocation) -> common_pb2.StoreLocation:
    """A copy with every credential replaced by a mask, for replies and reports."""
    out = common_pb2.StoreLocation()
    out.CopyFrom(location)
    kind = out.WhichOneof("kind")
    if kind == "s3":
        if out.s3.WhichOneof("auth") == "access_key":
            out.s3.access_key.secret_access_key = MASK
            out.s3.access_key.access_key_id = MASK
        elif out.s3.WhichOneof("auth") == "delegated_role" and out.s3.delegated_role.external_id:
            out.s3.delegated_role.external_id = MASK
    elif kind == "gcs" and out.gcs.credentials_json:
        out.gcs.credentials_json = MASK
    elif kind == "azure" and out.azure.sas_token:
        out.azure.sas_token = MASK
    return out


class Scrubber:
    """Replaces known secret strings in text; shared by messages, reports and log records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def register(self, location: common_pb2.StoreLocation) -> None:
        new = secret_values(location)
        if not new:
            return
        with self._lock:
            merged = set(self._secrets) | set(new)
            self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def scrub(self, text: str, extra: common_pb2.StoreLocation | None = None) -> str:
        secrets = self._secrets if extra is None else (*secret_values(extra), *self._secrets)
        for s in secrets:
            if s in text:
                text = text.replace(s, MASK)
        # A SAS signature in any URL, known to us or not.
        return _SAS_SIG.sub(r"\1" + MASK, text)


_SAS_SIG = re.compile(r"([?&]sig=)[^&\s'\"]+")

SCRUBBER = Scrubber()


class ScrubbingFilter(logging.Filter):
    """Rewrites each record's text with the scrubber's known secrets masked."""

    def __init__(self, scrubber: Scrubber = SCRUBBER) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            # Formatted here so the traceback text passes through the scrubber too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.scrubber.scrub(record.exc_text)
            record.exc_info = None
        record.msg = self.scrubber.scrub(message)
        record.args = None
        return True


def install_log_scrubbing(scrubber: Scrubber = SCRUBBER) -> None:
    """Adds the filter to every handler of the root logger (filters on loggers miss propagated records)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter(scrubber))
