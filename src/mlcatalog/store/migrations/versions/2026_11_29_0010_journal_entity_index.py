"""journal: an index on the entity an entry is about

Revision ID: 20261129_0010
Revises: 20261129_0007
Create Date: 2026-11-29 15:40:00

Who created an entity (the authorizer's ``write-own``) and an entity's history read the
journal by entity: without the index each is a scan of the whole journal.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261129_0010"
down_revision: str | None = "20261129_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_journal_entity", "journal", ["entity_type", "entity_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_journal_entity", table_name="journal")
