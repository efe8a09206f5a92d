"""search generation: a counter every embedded-search write moves, for in-memory views

Revision ID: 20261129_0015
Revises: 20261129_0014
Create Date: 2026-11-29 18:00:00

Each process's in-memory view of the embedded search tables (search/view.py) reads the counter
before a search and loads only the documents written since the generation it holds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261129_0015"
down_revision: str | None = "20261129_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "search_documents",
        sa.Column("generation", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_index(
        "ix_search_documents_generation", "search_documents", ["generation"], unique=False
    )
    state = op.create_table(
        "search_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("reset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_generation")),
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0, "reset": 0}])


def downgrade() -> None:
    op.drop_table("search_generation")
    op.drop_index("ix_search_documents_generation", table_name="search_documents")
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.drop_column("generation")
