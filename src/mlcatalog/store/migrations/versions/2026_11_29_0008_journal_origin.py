"""journal: each entry names where it came from (token, method, client, request), and an index
reads one entity's history

Revision ID: 20261129_0008
Revises: 20261129_0007
Create Date: 2026-11-29 15:10:00

The origin columns are null in the entries written before them; their hashes leave them out
(store/audit.py), so those entries verify as they did. A downgrade drops the columns, and with
them part of what the newer entries' hashes cover: those entries no longer verify.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261129_0008"
down_revision: str | None = "20261129_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("token_name", "auth_method", "client_address", "request_id")


def upgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=200), nullable=True))
    op.create_index("ix_journal_entity", "journal", ["entity_type", "entity_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_journal_entity", table_name="journal")
    with op.batch_alter_table("journal", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
