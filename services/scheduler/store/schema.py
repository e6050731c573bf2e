"""The scheduler's tables, as SQLAlchemy Core objects: one description for SQLite and Postgres.

Migrations (store/migrations/versions) create and change these tables; this module is what the
code reads and writes, and a migration test checks that both agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("type", Integer, nullable=False),
    # Milliseconds since 1970 pass 2**31 long ago: BIGINT on Postgres.
    Column("created_unix_ms", BigInteger, nullable=False),
)

datasources = Table(
    "datasources",
    metadata,
    Column("dataset_id", Text, ForeignKey("datasets.id"), primary_key=True),
    Column("purpose", Integer, primary_key=True),
    # Sealed by services/common/secrets.py before it gets here when it holds credentials.
    Column("location", LargeBinary, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("dataset_id", Text, ForeignKey("datasets.id"), nullable=False),
    Column("state", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("progress", Text, nullable=False),
    Column("report", Text),
    Column("tag_names", Text, nullable=False),
    Column("pool_version", BigInteger, nullable=False),
    Column("created_unix_ms", BigInteger, nullable=False),
    Column("updated_unix_ms", BigInteger, nullable=False),
    # The replica running it and until when (store/run_leases.py); NULL for runs from before leases.
    Column("owner", Text),
    Column("lease_expires_unix_ms", BigInteger),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Index("runs_by_state", "state", "lease_expires_unix_ms"),
)

# The newest pool version each pool's commits reached, as the runs that made them recorded it: a
# scheduler answers ListTags from the selector's summary it holds while this has not moved
# (services/scheduler/async_tags.py). Keyed by `pool_key`, which holds no credential.
pool_versions = Table(
    "pool_versions",
    metadata,
    Column("pool_key", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("updated_unix_ms", BigInteger, nullable=False),
)
