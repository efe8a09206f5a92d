"""The api_tokens table's queries: the one lookup a request makes, the listing, and writes."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mlcatalog.store.database import ReadSession, UnitOfWork
from mlcatalog.store.rows import ApiTokenRow


class TokenNameTaken(Exception):
    """A live (not revoked) token already has this name."""


async def by_public_id(session: ReadSession, public_id: str) -> ApiTokenRow | None:
    """The token with this public id, revoked or not: one lookup on a unique index."""
    found: ApiTokenRow | None = await session.scalar(
        select(ApiTokenRow).where(ApiTokenRow.public_id == public_id)
    )
    return found


async def live_by_name(uow: UnitOfWork, name: str) -> ApiTokenRow | None:
    """The token not revoked with this name, locked for the rest of the unit of work."""
    found: ApiTokenRow | None = await uow.session.scalar(
        select(ApiTokenRow)
        .where(ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_(None))
        .with_for_update()
    )
    return found


async def listing(session: ReadSession, *, include_revoked: bool) -> Sequence[ApiTokenRow]:
    """Tokens by name, then newest first."""
    query = select(ApiTokenRow).order_by(ApiTokenRow.name, ApiTokenRow.id.desc())
    if not include_revoked:
        query = query.where(ApiTokenRow.revoked_at.is_(None))
    return (await session.scalars(query)).all()


async def add(uow: UnitOfWork, row: ApiTokenRow) -> ApiTokenRow:
    """Insert ``row`` and give it its id; TokenNameTaken when a live token has its name (also
    when a concurrent creation won the race: the partial unique index decides)."""
    uow.session.add(row)
    try:
        await uow.session.flush()
    except IntegrityError:
        raise TokenNameTaken(row.name) from None
    return row


def revoke(row: ApiTokenRow, *, at: datetime, by: str) -> None:
    row.revoked_at = at
    row.revoked_by = by
