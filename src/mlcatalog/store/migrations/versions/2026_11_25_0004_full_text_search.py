"""full-text search for the embedded backend

Revision ID: 20261125_0004
Revises: 20261124_0003
Create Date: 2026-11-25 10:10:00

The embedded search backend's text index: SQLite's FTS5 on SQLite, a generated tsvector column
with a GIN index on PostgreSQL, both over search_documents.tokens (already lowercase words, so the
"simple" configuration and FTS5's default tokenizer read the same words). Not mapped by the ORM:
see rows.FULL_TEXT_TABLE and rows.FULL_TEXT_COLUMN.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261125_0004"
down_revision: str | None = "20261124_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE search_documents ADD COLUMN text_vector tsvector"
            " GENERATED ALWAYS AS (to_tsvector('simple', tokens)) STORED"
        )
        op.execute(
            "CREATE INDEX ix_search_documents_text_vector ON search_documents"
            " USING gin (text_vector)"
        )
        return
    # Filled by the indexer (rowid: see sql.text_rowid); 0005 has it replay the journal.
    op.execute("CREATE VIRTUAL TABLE search_text USING fts5(doc_key UNINDEXED, tokens)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_search_documents_text_vector")
        op.execute("ALTER TABLE search_documents DROP COLUMN text_vector")
        return
    op.execute("DROP TABLE search_text")
