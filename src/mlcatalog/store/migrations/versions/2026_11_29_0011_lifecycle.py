"""lifecycle: several versions in production per model, deployments, the journal by model

Revision ID: 20261129_0011
Revises: 20261129_0010
Create Date: 2026-11-29 16:00:00

``journal.model_id`` files the entries about a model's versions' stages, aliases and deployments
under the model (``ix_journal_model``). It is hashed (the chain's v3 encoding), so entries written
before it are left without one: setting it now would change their hashes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261129_0011"
down_revision: str | None = "20261129_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (never batch mode's table copy: see downgrade).
    op.add_column(
        "models",
        sa.Column(
            "allows_several_in_production", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column("journal", sa.Column("model_id", sa.Integer(), nullable=True))
    op.create_index("ix_journal_model", "journal", ["model_id", "seq"], unique=False)
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("endpoint", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("traffic_share", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_deployments_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_deployments_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint(
            "version_id",
            "environment",
            "endpoint",
            name=op.f("uq_deployments_version_id_environment_endpoint"),
        ),
    )
    op.create_index(op.f("ix_deployments_version_id"), "deployments", ["version_id"])
    op.create_index(op.f("ix_deployments_model_id"), "deployments", ["model_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deployments_model_id"), table_name="deployments")
    op.drop_index(op.f("ix_deployments_version_id"), table_name="deployments")
    op.drop_table("deployments")
    op.drop_index("ix_journal_model", table_name="journal")
    op.drop_column("journal", "model_id")
    # Not batch mode: on SQLite it copies `models` into a new table and drops the old one, and
    # the drop cascades to every model version (foreign keys are on). SQLite drops a column
    # itself since 3.35.
    op.drop_column("models", "allows_several_in_production")
