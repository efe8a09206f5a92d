"""Steps every rule shares: fetch a row or fail, flush with duplicates reported, stamp edits."""

from typing import Any, TypeVar

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from mlcatalog.catalog.errors import CatalogError, ErrorCode, not_found
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import Base, DocumentRow, LineageEdgeRow, utcnow

RowT = TypeVar("RowT", bound=Base)


async def get(uow: UnitOfWork, row_type: type[RowT], row_id: int, what: str) -> RowT:
    row = await uow.session.get(row_type, row_id)
    if row is None:
        raise not_found(f"{what} {row_id}")
    return row


async def flush(uow: UnitOfWork, *, duplicate: str) -> None:
    """Flush pending rows; a unique-constraint violation becomes ALREADY_EXISTS."""
    try:
        await uow.session.flush()
    except IntegrityError as error:
        raise CatalogError(ErrorCode.ALREADY_EXISTS, duplicate) from error


def touch(row: Any, uow: UnitOfWork) -> None:
    row.updated_at = utcnow()
    row.updated_by = uow.actor


def stamp(uow: UnitOfWork) -> dict[str, Any]:
    """created/updated columns for a new row."""
    now = utcnow()
    return {"created_at": now, "created_by": uow.actor, "updated_at": now, "updated_by": uow.actor}


async def forget_links(uow: UnitOfWork, entity_type: str, ids: list[int]) -> None:
    """Drop the rows that point at an entity by (type, id), which no foreign key can cascade."""
    if not ids:
        return
    await uow.session.execute(
        delete(DocumentRow).where(
            DocumentRow.subject_type == entity_type, DocumentRow.subject_id.in_(ids)
        )
    )
    for side_type, side_id in (
        (LineageEdgeRow.source_type, LineageEdgeRow.source_id),
        (LineageEdgeRow.target_type, LineageEdgeRow.target_id),
    ):
        await uow.session.execute(
            delete(LineageEdgeRow).where(side_type == entity_type, side_id.in_(ids))
        )
