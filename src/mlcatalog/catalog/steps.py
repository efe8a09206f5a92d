"""Steps every rule shares: fetch a row or fail, lock a model, create a named entity, learn an
entity's project, flush with duplicates reported, stamp edits."""

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, not_found
from mlcatalog.store import visibility
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import EntityType
from mlcatalog.store.rows import (
    Base,
    DatasetRow,
    ExperimentRow,
    ModelRow,
    ModelVersionRow,
    ProjectRow,
    utcnow,
)

RowT = TypeVar("RowT", bound=Base)
# The entities a project holds by a name unique within it.
NamedT = TypeVar("NamedT", ModelRow, DatasetRow, ExperimentRow)

# How a message names each entity type.
LABELS = {
    EntityType.PROJECT: "project",
    EntityType.MODEL: "model",
    EntityType.MODEL_VERSION: "model version",
    EntityType.DATASET: "dataset",
    EntityType.DATASET_VERSION: "dataset version",
    EntityType.EXPERIMENT: "experiment",
    EntityType.RUN: "run",
    EntityType.LINEAGE_EDGE: "lineage edge",
}


async def get(uow: UnitOfWork, row_type: type[RowT], row_id: int, what: str) -> RowT:
    """The row, or NOT_FOUND: also when it is in a project the actor does not see, so that no
    write reads, links or reveals an entity of a hidden project (a missing one says the same)."""
    row = await uow.session.get(row_type, row_id)
    if row is None or not (uow.visible.everything or await _shown(uow, row)):
        raise not_found(f"{what} {row_id}")
    return row


async def lock_model(uow: UnitOfWork, model_id: int) -> ModelRow:
    """The model's row, locked until commit (PostgreSQL; SQLite has one writer anyway): the
    changes that must see each other, a model's stage moves and its deployments' traffic
    shares, take it first and so run one at a time per model."""
    model = await uow.session.scalar(
        select(ModelRow).where(ModelRow.id == model_id).with_for_update()
    )
    if model is None:
        raise not_found(f"model {model_id}")
    return model


async def lock_version(uow: UnitOfWork, version_id: int) -> ModelVersionRow:
    """A version (as ``get``) under its model's lock, read again as the change before ours left
    it: what its stage's gates judge (metrics, definition, lineage) changes under the same lock
    as stage moves, so no change slips between a gate check and the move it allows."""
    version = await get(uow, ModelVersionRow, version_id, "model version")
    await lock_model(uow, version.model_id)
    await uow.session.refresh(version)
    return version


async def _shown(uow: UnitOfWork, row: Any) -> bool:
    project_id = await visibility.project_of_row(uow.session, row)
    return await visibility.shown(uow.session, uow.visible, project_id)


async def flush(uow: UnitOfWork, *, duplicate: str) -> None:
    """Flush pending rows; a unique-constraint violation becomes ALREADY_EXISTS."""
    try:
        await uow.session.flush()
    except IntegrityError as error:
        raise CatalogError(ErrorCode.ALREADY_EXISTS, duplicate) from error


async def create_named(
    uow: UnitOfWork,
    row_type: type[NamedT],
    *,
    project_id: int,
    name: str,
    what: str,
    **columns: Any,
) -> NamedT:
    """Add a model, dataset or experiment called ``name`` to a project (NOT_FOUND without the
    project, ALREADY_EXISTS when the name is taken there, also by a concurrent writer)."""
    await get(uow, ProjectRow, project_id, "project")
    validation.name(name, f"{what} name")
    duplicate = f"{what} {name!r} already exists in this project"
    exists = select(row_type.id).where(row_type.project_id == project_id, row_type.name == name)
    if await uow.session.scalar(exists):
        raise CatalogError(ErrorCode.ALREADY_EXISTS, duplicate)
    row = row_type(project_id=project_id, name=name, **columns, **stamp(uow))
    uow.session.add(row)
    await flush(uow, duplicate=duplicate)
    return row


async def project_of(uow: UnitOfWork, entity_type: EntityType, entity_id: int) -> int:
    """The project an entity belongs to, in one statement (NOT_FOUND when it does not exist, or
    is in a project the actor does not see)."""
    project_id = await uow.session.scalar(visibility.project_query(entity_type, entity_id))
    if project_id is None or not await visibility.shown(uow.session, uow.visible, project_id):
        raise not_found(f"{LABELS[entity_type]} {entity_id}")
    return int(project_id)


def touch(row: Any, uow: UnitOfWork) -> None:
    row.updated_at = utcnow()
    row.updated_by = uow.actor


def stamp(uow: UnitOfWork) -> dict[str, Any]:
    """created/updated columns for a new row."""
    now = utcnow()
    return {"created_at": now, "created_by": uow.actor, "updated_at": now, "updated_by": uow.actor}
