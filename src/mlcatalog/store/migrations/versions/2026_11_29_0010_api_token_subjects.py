"""api_tokens: each token acts as a subject of its own, token:<name>#<public id>

Revision ID: 20261129_0010
Revises: 20261129_0009
Create Date: 2026-11-29 15:20:00

A token made with the name of a revoked one acted as the same subject, ``token:<name>``, so the
journal could not tell the two apart. Tokens made before keep their journal entries (which are
append-only) and get the unique subject from now on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261129_0010"
down_revision: str | None = "20261129_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE api_tokens SET subject = 'token:' || name || '#' || public_id"
            " WHERE subject = 'token:' || name"
        )
    )


def downgrade() -> None:
    op.execute(sa.text("UPDATE api_tokens SET subject = 'token:' || name"))
