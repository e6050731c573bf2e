"""Schema migrations (Alembic, shipped in store/migrations): run on start or by `datapool migrate`.

A schema newer than this code (a newer replica migrated it) is refused rather than used: the
code could neither read the new columns nor keep their invariants.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

from datapool.errors import FailedPrecondition

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: replicas starting together take turns on the same Postgres advisory lock.
_ADVISORY_LOCK = 0x64617461706F6F6C


class SchemaError(FailedPrecondition):
    """The database's schema does not match this code."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def code_head() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "store/migrations has no revisions"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Brings the schema to this code's head; returns it. Refuses a schema newer than the code."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        _refuse_newer(connection, engine)
        command.upgrade(_config(connection), "head")
    return code_head()


def check(engine: Engine) -> None:
    """For a scheduler started without migrating: the schema must be exactly this code's."""
    with engine.connect() as connection:
        _refuse_newer(connection, engine)
        current = current_revision(connection)
    if current != code_head():
        raise SchemaError(
            f"the database {_where(engine)} is at schema {current or 'none'}, this scheduler needs "
            f"{code_head()}: run `datapool migrate --database-url …` first"
        )


def _refuse_newer(connection: Connection, engine: Engine) -> None:
    current = current_revision(connection)
    if current is None:
        return
    try:
        ScriptDirectory.from_config(_config()).get_revision(current)
    except CommandError:
        raise SchemaError(
            f"the database {_where(engine)} has schema revision {current!r}, newer than this "
            f"scheduler knows (its newest is {code_head()}): run a scheduler of the version that "
            "migrated it, or newer"
        ) from None


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
