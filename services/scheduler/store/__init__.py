"""The scheduler's metadata store (datasets, datasources, runs) on SQLAlchemy Core: SQLite or Postgres."""
