"""Which projects a reader sees, as SQL: lists, counts and lineage filter in the query itself, so
a page is never cut before hidden rows are dropped and no count includes them."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from mlcatalog.store.journal import CREATIONS, EntityType
from mlcatalog.store.rows import (
    DatasetRow,
    DatasetVersionRow,
    ExperimentRow,
    JournalRow,
    ModelRow,
    ModelVersionRow,
    ProjectRow,
    RunRow,
)


@dataclass(frozen=True)
class Visible:
    """Every project but ``hidden`` (``only`` None), or the projects in ``only``, by name."""

    only: frozenset[str] | None = None
    hidden: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return self.only is None and not self.hidden

    def shows(self, project: str | None) -> bool:
        """``project`` None: what belongs to no project (API tokens, sessions), which only a
        reader of every project sees."""
        if project is None:
            return self.only is None
        return project not in self.hidden if self.only is None else project in self.only

    def clause(
        self, project_id: InstrumentedAttribute[int] | InstrumentedAttribute[int | None]
    ) -> ColumnElement[bool]:
        """A condition on a project id column (a NULL project: see ``shows``)."""
        if self.only is not None:
            if not self.only:
                return false()
            return project_id.in_(select(ProjectRow.id).where(ProjectRow.name.in_(self.only)))
        if not self.hidden:
            return true()
        hidden = select(ProjectRow.id).where(ProjectRow.name.in_(self.hidden))
        return project_id.is_(None) | project_id.not_in(hidden)


EVERYTHING = Visible()


async def project_names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the projects with these ids, in one statement."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(ProjectRow.id, ProjectRow.name).where(ProjectRow.id.in_(wanted))
    )
    return {row.id: row.name for row in rows}


async def creator(session: AsyncSession, entity_type: str, entity_id: int) -> str | None:
    """Who created an entity: the actor of the journal's latest creation entry about it (the
    latest: SQLite may give a deleted entity's id to a new one). The journal, not the row's
    created_by: a delete leaves no row. None: no creation was journaled."""
    creation = CREATIONS.get(EntityType(entity_type))
    if creation is None:
        return None
    return await session.scalar(
        select(JournalRow.actor)
        .where(
            JournalRow.entity_type == entity_type,
            JournalRow.entity_id == entity_id,
            JournalRow.action == creation,
        )
        .order_by(JournalRow.seq.desc())
        .limit(1)
    )


def project_query(entity_type: EntityType, entity_id: int) -> Select[Any]:
    """The project id of one entity: its own column, or its parent's through one join."""
    if entity_type == EntityType.PROJECT:
        return select(ProjectRow.id).where(ProjectRow.id == entity_id)
    if entity_type in _OWN_PROJECT:
        row = _OWN_PROJECT[entity_type]
        return select(row.project_id).where(row.id == entity_id)
    if entity_type not in _THROUGH_PARENT:
        raise ValueError(f"a {entity_type} belongs to no one project")
    own_id, link, parent = _THROUGH_PARENT[entity_type]
    return (
        select(parent.project_id).join(own_id.class_, link == parent.id).where(own_id == entity_id)
    )


async def project_of_row(session: AsyncSession, row: Any) -> int | None:
    """The project a catalog row belongs to (its own, or its parent's: one statement)."""
    if isinstance(row, ProjectRow):
        return row.id
    project_id = getattr(row, "project_id", None)
    if project_id is not None:
        return int(project_id)
    for entity_type, (own_id, _, _) in _THROUGH_PARENT.items():
        if isinstance(row, own_id.class_):
            found = await session.scalar(project_query(EntityType(entity_type), row.id))
            return None if found is None else int(found)
    return None


async def shown(session: AsyncSession, visible: Visible, project_id: int | None) -> bool:
    """Whether ``visible`` shows the project with this id (one statement unless it shows all)."""
    if visible.everything:
        return True
    if project_id is None:
        return visible.shows(None)
    name = await session.scalar(select(ProjectRow.name).where(ProjectRow.id == project_id))
    return name is not None and visible.shows(name)


# The entities that hold their project themselves.
_OWN_PROJECT: dict[EntityType, Any] = {
    EntityType.MODEL: ModelRow,
    EntityType.DATASET: DatasetRow,
    EntityType.EXPERIMENT: ExperimentRow,
}
# The entities that belong to a project through their parent: (their id, the link up, the
# parent that holds the project).
_THROUGH_PARENT: dict[EntityType, tuple[Any, Any, Any]] = {
    EntityType.MODEL_VERSION: (ModelVersionRow.id, ModelVersionRow.model_id, ModelRow),
    EntityType.DATASET_VERSION: (DatasetVersionRow.id, DatasetVersionRow.dataset_id, DatasetRow),
    EntityType.RUN: (RunRow.id, RunRow.experiment_id, ExperimentRow),
}


def shown_nodes(
    visible: Visible, type_column: InstrumentedAttribute[str], id_column: InstrumentedAttribute[int]
) -> ColumnElement[bool]:
    """A condition that the (type, id) a lineage edge's end names is in a project ``visible``
    shows: edges to hidden entities are left out of the query, not out of its answer."""
    if visible.everything:
        return true()
    shown = [
        and_(
            type_column == str(entity_type),
            id_column.in_(
                select(own_id)
                .join(parent, parent.id == link)
                .where(visible.clause(parent.project_id))
            ),
        )
        for entity_type, (own_id, link, parent) in _THROUGH_PARENT.items()
    ]
    return or_(*shown)
