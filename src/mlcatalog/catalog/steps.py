"""Steps every rule shares: fetch a row or fail, create a named entity, learn an entity's project,
flush with duplicates reported, stamp edits."""

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, not_found
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import EntityType
from mlcatalog.store.rows import (
    Base,
    DatasetRow,
    DatasetVersionRow,
    ExperimentRow,
    ModelRow,
    ModelVersionRow,
    ProjectRow,
    RunRow,
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


def _project_query(entity_type: EntityType, entity_id: int) -> Select[int]:
    if entity_type == EntityType.PROJECT:
        return select(ProjectRow.id).where(ProjectRow.id == entity_id)
    if entity_type in (EntityType.MODEL, EntityType.MODEL_VERSION):
        stmt = select(ModelRow.project_id)
        if entity_type == EntityType.MODEL:
            return stmt.where(ModelRow.id == entity_id)
        return stmt.join(ModelVersionRow, ModelVersionRow.model_id == ModelRow.id).where(
            ModelVersionRow.id == entity_id
        )
    if entity_type in (EntityType.DATASET, EntityType.DATASET_VERSION):
        stmt = select(DatasetRow.project_id)
        if entity_type == EntityType.DATASET:
            return stmt.where(DatasetRow.id == entity_id)
        return stmt.join(DatasetVersionRow, DatasetVersionRow.dataset_id == DatasetRow.id).where(
            DatasetVersionRow.id == entity_id
        )
    if entity_type in (EntityType.EXPERIMENT, EntityType.RUN):
        stmt = select(ExperimentRow.project_id)
        if entity_type == EntityType.EXPERIMENT:
            return stmt.where(ExperimentRow.id == entity_id)
        return stmt.join(RunRow, RunRow.experiment_id == ExperimentRow.id).where(
            RunRow.id == entity_id
        )
    raise ValueError(f"a {entity_type} belongs to no one project")


async def project_of(uow: UnitOfWork, entity_type: EntityType, entity_id: int) -> int:
    """The project an entity belongs to, in one statement (NOT_FOUND when it does not exist)."""
    project_id = await uow.session.scalar(_project_query(entity_type, entity_id))
    if project_id is None:
        raise not_found(f"{LABELS[entity_type]} {entity_id}")
    return project_id


def touch(row: Any, uow: UnitOfWork) -> None:
    row.updated_at = utcnow()
    row.updated_by = uow.actor


def stamp(uow: UnitOfWork) -> dict[str, Any]:
    """created/updated columns for a new row."""
    now = utcnow()
    return {"created_at": now, "created_by": uow.actor, "updated_at": now, "updated_by": uow.actor}
