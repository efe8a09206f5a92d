"""Projects: the namespaces every asset belongs to."""

from sqlalchemy import select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, not_found
from mlcatalog.catalog.journal import bounded, record
from mlcatalog.catalog.steps import flush
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, ProjectCreated
from mlcatalog.store.rows import ProjectRow, utcnow


async def create_project(uow: UnitOfWork, *, name: str, description: str | None) -> ProjectRow:
    validation.name(name, "project name", max_length=100)
    if await uow.session.scalar(select(ProjectRow.id).where(ProjectRow.name == name)):
        raise CatalogError(ErrorCode.ALREADY_EXISTS, f"project {name!r} already exists")
    project = ProjectRow(
        name=name,
        description=validation.text(description, "description"),
        created_at=utcnow(),
        created_by=uow.actor,
    )
    uow.session.add(project)
    await flush(uow, duplicate=f"project {name!r} already exists")
    record(
        uow,
        Action.PROJECT_CREATED,
        project.id,
        project_id=project.id,
        after=ProjectCreated(name=name, description=bounded(project.description)),
    )
    return project


async def project_by_name(uow: UnitOfWork, name: str) -> ProjectRow:
    project = await uow.session.scalar(select(ProjectRow).where(ProjectRow.name == name))
    if project is None or not uow.visible.shows(project.name):
        raise not_found(f"project {name[:100]!r}")
    return project
