"""Alembic's entry point for the scheduler's schema: runs on the connection the caller hands over.

services/scheduler/store/migrate.py builds the Alembic config in code (no alembic.ini to ship) and
puts an open connection into `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from services.scheduler.store.schema import metadata

connection: Connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
