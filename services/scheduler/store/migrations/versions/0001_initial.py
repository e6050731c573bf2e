"""The tables of the embedded store before migrations existed: datasets, datasources, runs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A state directory from before migrations has these tables and no alembic_version:
    # adopt them as they are (same columns) instead of failing on "table exists".
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "datasets" not in existing:
        op.create_table(
            "datasets",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text, nullable=False, unique=True),
            sa.Column("type", sa.Integer, nullable=False),
            sa.Column("created_unix_ms", sa.BigInteger, nullable=False),
        )
    if "datasources" not in existing:
        op.create_table(
            "datasources",
            sa.Column("dataset_id", sa.Text, sa.ForeignKey("datasets.id"), primary_key=True),
            sa.Column("purpose", sa.Integer, primary_key=True),
            sa.Column("location", sa.LargeBinary, nullable=False),
        )
    if "runs" not in existing:
        op.create_table(
            "runs",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("dataset_id", sa.Text, sa.ForeignKey("datasets.id"), nullable=False),
            sa.Column("state", sa.Integer, nullable=False),
            sa.Column("message", sa.Text, nullable=False),
            sa.Column("config", sa.Text, nullable=False),
            sa.Column("progress", sa.Text, nullable=False),
            sa.Column("report", sa.Text),
            sa.Column("tag_names", sa.Text, nullable=False),
            sa.Column("pool_version", sa.BigInteger, nullable=False),
            sa.Column("created_unix_ms", sa.BigInteger, nullable=False),
            sa.Column("updated_unix_ms", sa.BigInteger, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_table("datasources")
    op.drop_table("datasets")
