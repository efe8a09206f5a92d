"""journal: entries are hash-chained (prev_hash, hash); the chain is computed for existing entries

Revision ID: 20261129_0006
Revises: 20261125_0005
Create Date: 2026-11-29 13:50:00

Each entry gains the hash of the entry before it and its own (store/audit.py). The entries
already written are chained here, in sequence order, so that an upgraded catalog verifies; one
successor per entry (a unique prev_hash) makes a forked chain impossible to commit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mlcatalog.store.audit import GENESIS, entry_hash
from mlcatalog.store.rows import Json, UtcDateTime

revision: str = "20261129_0006"
down_revision: str | None = "20261125_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

journal = sa.table(
    "journal",
    sa.column("seq", sa.BigInteger()),
    sa.column("at", UtcDateTime()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("entity_type", sa.String()),
    sa.column("entity_id", sa.Integer()),
    sa.column("project_id", sa.Integer()),
    sa.column("changes", Json),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


journal_head = sa.table(
    "journal_head",
    sa.column("id", sa.Integer()),
    sa.column("seq", sa.BigInteger()),
    sa.column("hash", sa.String()),
)


def _chain_existing_entries() -> None:
    connection = op.get_bind()
    last_seq, prev_hash = 0, GENESIS
    while True:
        rows = connection.execute(
            sa.select(journal).where(journal.c.seq > last_seq).order_by(journal.c.seq).limit(BATCH)
        ).all()
        if not rows:
            if last_seq:
                connection.execute(
                    sa.insert(journal_head).values(id=1, seq=last_seq, hash=prev_hash)
                )
            return
        updates = []
        for row in rows:
            digest = entry_hash(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                entity_type=row.entity_type,
                entity_id=row.entity_id,
                project_id=row.project_id,
                changes=row.changes,
                prev_hash=prev_hash,
            )
            updates.append({"key": row.seq, "prev_hash": prev_hash, "hash": digest})
            last_seq, prev_hash = row.seq, digest
        connection.execute(
            journal.update()
            .where(journal.c.seq == sa.bindparam("key"))
            .values(prev_hash=sa.bindparam("prev_hash"), hash=sa.bindparam("hash")),
            updates,
        )


def upgrade() -> None:
    op.create_table(
        "journal_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_head")),
    )
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_entries()
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_journal_prev_hash"), ["prev_hash"])


def downgrade() -> None:
    op.drop_table("journal_head")
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_journal_prev_hash"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
