"""Batch reads for the DataLoaders and search hydration, and the root lists (lineage reads live
in lineage.py, paging in paging.py)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from mlcatalog.store.journal import EntityType
from mlcatalog.store.paging import Listing, Order, prepared
from mlcatalog.store.rows import (
    AliasRow,
    Base,
    DatasetRow,
    DatasetTagRow,
    DocumentRow,
    ExperimentRow,
    JournalRow,
    MetricRow,
    ModelRow,
    ModelTagRow,
    ModelVersionRow,
    ModelVersionTagRow,
    ProjectRow,
    StageTransitionRequestRow,
)
from mlcatalog.store.visibility import Visible

RowT = TypeVar("RowT", bound=Base)


async def by_ids(
    session: AsyncSession, row_type: type[RowT], ids: Iterable[int]
) -> dict[int, RowT]:
    primary = row_type.__mapper__.primary_key[0]
    stmt = prepared(
        ("by_ids", row_type),
        lambda: select(row_type).where(primary.in_(bindparam("ids", expanding=True))),
    )
    rows = await session.scalars(stmt, {"ids": list(ids)})
    return {getattr(row, primary.name): row for row in rows}


async def grouped(
    session: AsyncSession,
    row_type: type[RowT],
    parent: InstrumentedAttribute[int],
    ids: Iterable[int],
    *order_by: Any,
) -> dict[int, list[RowT]]:
    """All children of each parent (for small, bounded lists such as tags and aliases)."""
    wanted = list(ids)
    groups: dict[int, list[RowT]] = {parent_id: [] for parent_id in wanted}
    stmt = prepared(
        ("grouped", row_type, parent.key, *(str(o) for o in order_by)),
        lambda: (
            select(row_type).where(parent.in_(bindparam("ids", expanding=True))).order_by(*order_by)
        ),
    )
    for row in await session.scalars(stmt, {"ids": wanted}):
        groups[getattr(row, parent.key)].append(row)
    return groups


# The tag table of each taggable entity type and its column naming the tagged row; the rules
# (catalog/models.py) write through the same table.
TAGS_OF: dict[EntityType, tuple[type[Any], InstrumentedAttribute[int]]] = {
    EntityType.MODEL: (ModelTagRow, ModelTagRow.model_id),
    EntityType.MODEL_VERSION: (ModelVersionTagRow, ModelVersionTagRow.version_id),
    EntityType.DATASET: (DatasetTagRow, DatasetTagRow.dataset_id),
}


async def tags_of(
    session: AsyncSession, owner_type: str, owner_ids: Iterable[int]
) -> dict[int, list[Any]]:
    """The tags of each model, model version or dataset, by key."""
    row_type, parent = TAGS_OF[EntityType(owner_type)]
    return await grouped(session, row_type, parent, owner_ids, row_type.key)


async def aliases_of(
    session: AsyncSession, owner: str, owner_ids: Iterable[int]
) -> dict[int, list[AliasRow]]:
    """The aliases of each model (``owner`` "model") or model version ("version"), by name."""
    parent = AliasRow.model_id if owner == "model" else AliasRow.version_id
    return await grouped(session, AliasRow, parent, owner_ids, AliasRow.name)


async def documents_of(
    session: AsyncSession, subjects: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], DocumentRow]:
    """The card of each (subject type, subject id)."""
    by_type: dict[str, list[int]] = {}
    for subject_type, subject_id in subjects:
        by_type.setdefault(subject_type, []).append(subject_id)
    types = sorted(by_type)

    def build() -> Any:
        return select(DocumentRow).where(
            or_(
                *(
                    and_(
                        DocumentRow.subject_type == t,
                        DocumentRow.subject_id.in_(bindparam(f"ids_{i}", expanding=True)),
                    )
                    for i, t in enumerate(types)
                )
            )
        )

    stmt = prepared(("documents_of", *types), build)
    rows = await session.scalars(stmt, {f"ids_{i}": by_type[t] for i, t in enumerate(types)})
    return {(row.subject_type, row.subject_id): row for row in rows}


async def latest_versions(
    session: AsyncSession, model_ids: Iterable[int], stage: str | None = None
) -> dict[int, ModelVersionRow]:
    """The highest-numbered version of each model (in ``stage`` when given), one statement."""
    ids = list(model_ids)
    top = select(ModelVersionRow.model_id, func.max(ModelVersionRow.number).label("number")).where(
        ModelVersionRow.model_id.in_(ids)
    )
    if stage is not None:
        top = top.where(ModelVersionRow.stage == stage)
    newest = top.group_by(ModelVersionRow.model_id).subquery()
    stmt = select(ModelVersionRow).join(
        newest,
        and_(
            ModelVersionRow.model_id == newest.c.model_id, ModelVersionRow.number == newest.c.number
        ),
    )
    return {row.model_id: row for row in await session.scalars(stmt)}


async def metric_values(
    session: AsyncSession, keys: Sequence[tuple[int, str, str | None]]
) -> dict[tuple[int, str, str | None], MetricRow]:
    """The newest entry (highest step, then latest logged) of each (version, name, dataset)."""
    if not keys:
        return {}
    # IN lists keep one statement shape for any number of keys (an OR of ANDs would not);
    # the few extra (name, dataset) pairs it reads are dropped below.
    rank = func.row_number().over(
        partition_by=(MetricRow.version_id, MetricRow.name, MetricRow.dataset),
        order_by=(func.coalesce(MetricRow.step, -1).desc(), MetricRow.id.desc()),
    )
    ranked = (
        select(MetricRow, rank.label("n"))
        .where(
            MetricRow.version_id.in_({k[0] for k in keys}),
            MetricRow.name.in_({k[1] for k in keys}),
        )
        .subquery()
    )
    alias = aliased(MetricRow, ranked)
    rows = await session.scalars(select(alias).where(ranked.c.n == 1))
    wanted = set(keys)
    found = {(row.version_id, row.name, row.dataset): row for row in rows}
    return {key: row for key, row in found.items() if key in wanted}


def _contains(column: InstrumentedAttribute[str], fragment: str) -> ColumnElement[bool]:
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


MODEL_ORDERS = ("name", "created_at", "updated_at")


def models_listing(
    *,
    order_by: str = "name",
    descending: bool = False,
    project: str | None = None,
    task: str | None = None,
    owner: str | None = None,
    name_contains: str | None = None,
    tag: tuple[str, str | None] | None = None,
    stage: str | None = None,
    include_archived: bool = False,
    visible: Visible,
) -> Listing[ModelRow]:
    stmt = select(ModelRow).where(visible.clause(ModelRow.project_id))
    if project is not None:
        stmt = stmt.join(ProjectRow, ProjectRow.id == ModelRow.project_id).where(
            ProjectRow.name == project
        )
    if task is not None:
        stmt = stmt.where(ModelRow.task == task)
    if owner is not None:
        stmt = stmt.where(ModelRow.owner == owner)
    if name_contains:
        stmt = stmt.where(_contains(ModelRow.name, name_contains))
    if tag is not None:
        tagged = select(ModelTagRow.model_id).where(ModelTagRow.key == tag[0])
        if tag[1] is not None:
            tagged = tagged.where(ModelTagRow.value == tag[1])
        stmt = stmt.where(ModelRow.id.in_(tagged))
    if stage is not None:
        staged = select(ModelVersionRow.model_id).where(ModelVersionRow.stage == stage)
        stmt = stmt.where(ModelRow.id.in_(staged))
    if not include_archived:
        stmt = stmt.where(ModelRow.archived_at.is_(None))
    if order_by not in MODEL_ORDERS:
        raise ValueError(f"models are not ordered by {order_by}")
    order = Order((getattr(ModelRow, order_by), ModelRow.id), (descending, descending))
    direction = "DESC" if descending else "ASC"
    return Listing(f"models:{order_by}:{direction}", stmt, order)


def datasets_listing(
    *,
    project: str | None = None,
    name_contains: str | None = None,
    tag: tuple[str, str | None] | None = None,
    include_archived: bool = False,
    visible: Visible,
) -> Listing[DatasetRow]:
    stmt = select(DatasetRow).where(visible.clause(DatasetRow.project_id))
    if project is not None:
        stmt = stmt.join(ProjectRow, ProjectRow.id == DatasetRow.project_id).where(
            ProjectRow.name == project
        )
    if name_contains:
        stmt = stmt.where(_contains(DatasetRow.name, name_contains))
    if tag is not None:
        tagged = select(DatasetTagRow.dataset_id).where(DatasetTagRow.key == tag[0])
        if tag[1] is not None:
            tagged = tagged.where(DatasetTagRow.value == tag[1])
        stmt = stmt.where(DatasetRow.id.in_(tagged))
    if not include_archived:
        stmt = stmt.where(DatasetRow.archived_at.is_(None))
    return Listing("datasets", stmt, Order((DatasetRow.name, DatasetRow.id), (False, False)))


def experiments_listing(*, project: str | None = None, visible: Visible) -> Listing[ExperimentRow]:
    stmt = select(ExperimentRow).where(visible.clause(ExperimentRow.project_id))
    if project is not None:
        stmt = stmt.join(ProjectRow, ProjectRow.id == ExperimentRow.project_id).where(
            ProjectRow.name == project
        )
    return Listing(
        "experiments", stmt, Order((ExperimentRow.name, ExperimentRow.id), (False, False))
    )


def journal_listing(
    *,
    project: str | None = None,
    entity: tuple[str, int] | None = None,
    action: str | None = None,
    actor: str | None = None,
    model_id: int | None = None,
    actions: Sequence[str] = (),
    visible: Visible,
) -> Listing[JournalRow]:
    """The journal, newest first. ``model_id`` (ix_journal_model) keeps the entries filed under a
    model: its versions' stage, alias and deployment changes."""
    stmt = select(JournalRow).where(visible.clause(JournalRow.project_id))
    if model_id is not None:
        stmt = stmt.where(JournalRow.model_id == model_id)
    if actions:
        stmt = stmt.where(JournalRow.action.in_(actions))
    if project is not None:
        project_id = select(ProjectRow.id).where(ProjectRow.name == project).scalar_subquery()
        stmt = stmt.where(JournalRow.project_id == project_id)
    if entity is not None:
        stmt = stmt.where(JournalRow.entity_type == entity[0], JournalRow.entity_id == entity[1])
    if action is not None:
        stmt = stmt.where(JournalRow.action == action)
    if actor is not None:
        stmt = stmt.where(JournalRow.actor == actor)
    return Listing("journal", stmt, Order((JournalRow.seq,), (True,)))


async def by_name(
    session: AsyncSession, row_type: type[RowT], project: str, name: str
) -> RowT | None:
    """A model, dataset or experiment by its project's name and its own."""
    columns = row_type.__table__.c
    stmt = prepared(
        ("by_name", row_type),
        lambda: (
            select(row_type)
            .join(ProjectRow, ProjectRow.id == columns.project_id)
            .where(ProjectRow.name == bindparam("project"), columns.name == bindparam("name"))
        ),
    )
    return (await session.scalars(stmt, {"project": project, "name": name})).first()


def transition_requests_listing(
    *, status: str | None = None, project: str | None = None, visible: Visible
) -> Listing[StageTransitionRequestRow]:
    """Stage transition requests in the projects ``visible`` shows, newest first."""
    stmt = select(StageTransitionRequestRow).where(
        visible.clause(StageTransitionRequestRow.project_id)
    )
    if status is not None:
        stmt = stmt.where(StageTransitionRequestRow.status == status)
    if project is not None:
        project_id = select(ProjectRow.id).where(ProjectRow.name == project).scalar_subquery()
        stmt = stmt.where(StageTransitionRequestRow.project_id == project_id)
    order = Order((StageTransitionRequestRow.id,), (True,))
    return Listing("transitionRequests", stmt, order)


def projects_listing(*, visible: Visible) -> Listing[ProjectRow]:
    stmt = select(ProjectRow).where(visible.clause(ProjectRow.id))
    return Listing("projects", stmt, Order((ProjectRow.name, ProjectRow.id), (False, False)))


@dataclass(frozen=True)
class JournalEvent:
    """A journal entry as the subscriptions read it: with its project's name and, for a model
    or one of its versions, the model's id (what the event filters match on)."""

    row: JournalRow
    project: str | None
    model_id: int | None


async def journal_events(
    session: AsyncSession,
    *,
    after: int,
    limit: int,
    visible: Visible,
    unowned: bool = True,
    projects: Sequence[str] = (),
    model_ids: Sequence[int] = (),
    actions: Sequence[str] = (),
) -> list[JournalEvent]:
    """The entries after ``after`` in the journal's order, at most ``limit``, in projects
    ``visible`` shows, and of no project only if ``unowned`` (empty filters: no condition). A
    deleted version's model is unknown."""
    model_id = case(
        (JournalRow.entity_type == EntityType.MODEL, JournalRow.entity_id),
        else_=ModelVersionRow.model_id,
    )
    stmt = (
        select(JournalRow, ProjectRow.name, model_id)
        .outerjoin(ProjectRow, ProjectRow.id == JournalRow.project_id)
        .outerjoin(
            ModelVersionRow,
            and_(
                JournalRow.entity_type == EntityType.MODEL_VERSION,
                ModelVersionRow.id == JournalRow.entity_id,
            ),
        )
        .where(JournalRow.seq > after, visible.clause(JournalRow.project_id))
        .order_by(JournalRow.seq)
        .limit(limit)
    )
    if not unowned:
        stmt = stmt.where(JournalRow.project_id.is_not(None))
    if projects:
        stmt = stmt.where(ProjectRow.name.in_(projects))
    if model_ids:
        stmt = stmt.where(model_id.in_(model_ids))
    if actions:
        stmt = stmt.where(JournalRow.action.in_(actions))
    rows = await session.execute(stmt)
    return [JournalEvent(row, name, model) for row, name, model in rows]


async def journal_head(session: AsyncSession) -> int:
    """The newest entry's seq, 0 for an empty journal."""
    return int(await session.scalar(select(func.coalesce(func.max(JournalRow.seq), 0))) or 0)
