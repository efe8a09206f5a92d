"""Projects: the namespaces every asset belongs to, and their lifecycle settings."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, not_found
from mlcatalog.catalog.journal import bounded, diff, record
from mlcatalog.catalog.steps import flush, get
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, ProjectCreated, ProjectSettings
from mlcatalog.store.rows import ProjectRow, ProjectSettingsRow, utcnow


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


@dataclass(frozen=True)
class Settings:
    """A project's lifecycle settings; a project that never set them requires no approvals."""

    require_approval: frozenset[Stage] = frozenset()
    four_eyes: bool = False

    @classmethod
    def of_row(cls, row: ProjectSettingsRow) -> "Settings":
        return cls(frozenset(Stage(s) for s in row.require_approval), row.four_eyes)


async def settings_of(uow: UnitOfWork, project_id: int) -> Settings:
    row = await uow.session.get(ProjectSettingsRow, project_id)
    return Settings() if row is None else Settings.of_row(row)


async def update_project_settings(
    uow: UnitOfWork,
    *,
    project_id: int,
    require_approval: Sequence[Stage] | None = None,
    four_eyes: bool | None = None,
) -> ProjectRow:
    """Change the settings given (None: left as they are); journaled when something changed."""
    project = await get(uow, ProjectRow, project_id, "project")
    row = await uow.session.get(ProjectSettingsRow, project_id)
    new = row is None
    if row is None:
        row = ProjectSettingsRow(project_id=project_id, require_approval=[], four_eyes=False)
    changes: dict[str, object] = {}
    if require_approval is not None:
        # In lifecycle order, each once: equal settings compare equal.
        changes["require_approval"] = [s.value for s in Stage if s in set(require_approval)]
    if four_eyes is not None:
        changes["four_eyes"] = four_eyes
    before, after = diff(row, changes)
    if after:
        row.updated_at, row.updated_by = utcnow(), uow.actor
        if new:
            uow.session.add(row)
        await uow.session.flush()
        record(
            uow,
            Action.PROJECT_SETTINGS_CHANGED,
            project.id,
            project_id=project.id,
            before=ProjectSettings(**before),  # type: ignore[typeddict-item]
            after=ProjectSettings(**after),  # type: ignore[typeddict-item]
        )
    return project
