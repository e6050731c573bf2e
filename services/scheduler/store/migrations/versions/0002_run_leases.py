"""Run leases: the scheduler replica that owns a run, and until when, for takeover by another.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("owner", sa.Text))
        runs.add_column(sa.Column("lease_expires_unix_ms", sa.BigInteger))
        runs.add_column(sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
    op.create_index("runs_by_state", "runs", ["state", "lease_expires_unix_ms"])


def downgrade() -> None:
    op.drop_index("runs_by_state", "runs")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("attempt")
        runs.drop_column("lease_expires_unix_ms")
        runs.drop_column("owner")
