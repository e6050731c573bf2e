"""Pool versions: the newest version each pool's commits reached, for ListTags' cached answers.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pool_versions",
        sa.Column("pool_key", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_unix_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pool_versions")
