"""The sessions table's queries: the one lookup a request makes, and the writes of a login."""

from datetime import datetime

from sqlalchemy import delete, select

from mlcatalog.store.database import ReadSession, UnitOfWork
from mlcatalog.store.rows import SessionRow


async def by_public_id(session: ReadSession, public_id: str) -> SessionRow | None:
    """The session with this public id, expired or not: one lookup on a unique index."""
    found: SessionRow | None = await session.scalar(
        select(SessionRow).where(SessionRow.public_id == public_id)
    )
    return found


async def start(uow: UnitOfWork, row: SessionRow, *, now: datetime) -> SessionRow:
    """Insert ``row`` and give it its id; sessions expired by ``now`` go, so the table holds
    about the sessions of the last ``session_hours``."""
    await uow.session.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
    uow.session.add(row)
    await uow.session.flush()
    return row


async def end(uow: UnitOfWork, session_id: int) -> bool:
    """Delete the session; False when it was gone already (a concurrent logout)."""
    deleted = await uow.session.scalar(
        delete(SessionRow).where(SessionRow.id == session_id).returning(SessionRow.id)
    )
    return deleted is not None
