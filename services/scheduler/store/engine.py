"""`--database-url` to a SQLAlchemy engine: SQLite on one host, Postgres (psycopg 3) for clusters."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from datapool.errors import InvalidArgument

DEFAULT_DB_FILE = "datapool.sqlite3"


def default_database_url(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / DEFAULT_DB_FILE).absolute()}"


def database_url(value: str | Path) -> str:
    """A Path is a SQLite file (the embedded store's old way of naming it)."""
    return f"sqlite:///{Path(value).absolute()}" if isinstance(value, Path) else value


def open_engine(value: str | Path) -> Engine:
    url_text = database_url(value)
    try:
        url = make_url(url_text)
    except ArgumentError:
        raise InvalidArgument(
            f"--database-url {_shown(url_text)!r} is not a database URL; "
            "give sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    if url.get_backend_name() == "sqlite":
        if url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.get_backend_name() == "postgresql":
        # psycopg 3 is the one driver we ship; a bare postgresql:// would ask for psycopg2.
        url = url.set(drivername="postgresql+psycopg")
        # Enough for the server's handler threads, the runs and their watchers at once.
        return create_engine(url, pool_pre_ping=True, pool_size=16, max_overflow=32)
    raise InvalidArgument(
        f"--database-url {_shown(url_text)!r}: unsupported database {url.get_backend_name()!r}; "
        "give sqlite:///PATH or postgresql://…"
    )


def _shown(url_text: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url_text).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"


def _sqlite_pragmas(conn: sqlite3.Connection, _record: Any) -> None:
    # WAL lets readers (WatchRun, GetRun) run while a run writes its progress.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
