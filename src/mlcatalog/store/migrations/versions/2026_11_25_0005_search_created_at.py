"""search documents: creation time, archived state, a covering index; the mirrors replay

Revision ID: 20261125_0005
Revises: 20261125_0004
Create Date: 2026-11-25 09:25:00

Search now has documents for models, datasets, experiments and runs, and the embedded backend
keeps creation times and a full-text table: every search checkpoint goes back to the start so
that the indexers replay the journal (external versions make it harmless for OpenSearch), and the
embedded backend's rows, derived data only, are dropped to be rewritten by that replay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261125_0005"
down_revision: str | None = "20261125_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_documents_filters",
            [
                "doc_key",
                "deleted",
                "archived",
                "entity_type",
                "entity_id",
                "project_id",
                "updated_at",
                "created_at",
                "name",
            ],
            unique=False,
        )
    op.execute("UPDATE search_checkpoints SET seq = 0, owner = NULL, lease_until = NULL")
    for table in ("search_facets", "search_metrics", "search_documents"):
        op.execute(f"DELETE FROM {table}")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DELETE FROM search_text")


def downgrade() -> None:
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_search_documents_filters")
        batch_op.drop_column("archived")
        batch_op.drop_column("created_at")
