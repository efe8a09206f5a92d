"""Batch reads for the DataLoaders and paging by keyset (lineage reads live in lineage.py)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from mlcatalog.store.rows import (
    Base,
    DatasetRow,
    DatasetTagRow,
    ExperimentRow,
    JournalRow,
    MetricRow,
    ModelRow,
    ModelTagRow,
    ModelVersionRow,
    ProjectRow,
    UtcDateTime,
)

RowT = TypeVar("RowT", bound=Base)


@dataclass(frozen=True)
class Order:
    """A keyset order: columns (the last one unique) and whether each sorts descending."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: tuple[bool, ...]

    def key(self, row: Any) -> list[Any]:
        return [_plain(getattr(row, column.key)) for column in self.columns]

    def parse(self, values: Sequence[Any]) -> list[Any]:
        """A sort key read back from a cursor; ValueError when it cannot be one of this order."""
        if len(values) != len(self.columns):
            raise ValueError("cursor key has the wrong length")
        parsed = []
        for column, value in zip(self.columns, values, strict=True):
            if isinstance(column.type, UtcDateTime):
                value = datetime.fromisoformat(value) if isinstance(value, str) else None
                if value is None or value.tzinfo is None:
                    raise ValueError("cursor holds no timestamp")
            elif not isinstance(value, column.type.python_type):
                raise ValueError("cursor value has the wrong type")
            parsed.append(value)
        return parsed

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after the parsed key ``values``: (a > x) or (a = x and b > y) or …"""
        clauses = []
        for i, (column, desc) in enumerate(zip(self.columns, self.descending, strict=True)):
            beyond = column < values[i] if desc else column > values[i]
            equal = [c == v for c, v in zip(self.columns[:i], values[:i], strict=True)]
            clauses.append(and_(*equal, beyond))
        return or_(*clauses)

    def by(self) -> list[ColumnElement[Any]]:
        return [
            c.desc() if d else c.asc() for c, d in zip(self.columns, self.descending, strict=True)
        ]


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def page(
    session: AsyncSession,
    stmt: Select[RowT],
    order: Order,
    first: int,
    after: Sequence[Any] | None,
) -> list[RowT]:
    """One page of ``first`` rows plus one more, which tells whether a next page exists."""
    if after is not None:
        stmt = stmt.where(order.after(after))
    return list(await session.scalars(stmt.order_by(*order.by()).limit(first + 1)))


async def count(session: AsyncSession, stmt: Select[Any]) -> int:
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return int(total or 0)


async def child_pages(
    session: AsyncSession,
    row_type: type[RowT],
    parent: InstrumentedAttribute[int],
    order: Order,
    parent_ids: Iterable[int],
    first: int,
    after: Sequence[Any] | None,
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[int, list[RowT]]:
    """The first ``first`` + 1 children of each parent, in one statement (a window per parent)."""
    ids = list(parent_ids)
    number = func.row_number().over(partition_by=parent, order_by=order.by()).label("n")
    inner = select(row_type, number).where(parent.in_(ids), *where)
    if after is not None:
        inner = inner.where(order.after(after))
    ranked = inner.subquery()
    alias = aliased(row_type, ranked)
    stmt = select(alias).where(ranked.c.n <= first + 1).order_by(ranked.c[parent.key], ranked.c.n)
    pages: dict[int, list[RowT]] = {parent_id: [] for parent_id in ids}
    for row in await session.scalars(stmt):
        pages[getattr(row, parent.key)].append(row)
    return pages


async def child_counts(
    session: AsyncSession,
    parent: InstrumentedAttribute[int],
    parent_ids: Iterable[int],
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[int, int]:
    ids = list(parent_ids)
    stmt = select(parent, func.count()).where(parent.in_(ids), *where).group_by(parent)
    counts = {parent_id: 0 for parent_id in ids}
    counts.update({row[0]: int(row[1]) for row in await session.execute(stmt)})
    return counts


async def by_ids(
    session: AsyncSession, row_type: type[RowT], ids: Iterable[int]
) -> dict[int, RowT]:
    primary = row_type.__mapper__.primary_key[0]
    rows = await session.scalars(select(row_type).where(primary.in_(list(ids))))
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
    for row in await session.scalars(
        select(row_type).where(parent.in_(wanted)).order_by(*order_by)
    ):
        groups[getattr(row, parent.key)].append(row)
    return groups


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


def models_query(
    *,
    project: str | None = None,
    task: str | None = None,
    owner: str | None = None,
    name_contains: str | None = None,
    tag: tuple[str, str | None] | None = None,
    stage: str | None = None,
    include_archived: bool = False,
) -> Select[ModelRow]:
    stmt = select(ModelRow)
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
    return stmt


def datasets_query(
    *,
    project: str | None = None,
    name_contains: str | None = None,
    tag: tuple[str, str | None] | None = None,
    include_archived: bool = False,
) -> Select[DatasetRow]:
    stmt = select(DatasetRow)
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
    return stmt


def experiments_query(*, project: str | None = None) -> Select[ExperimentRow]:
    stmt = select(ExperimentRow)
    if project is not None:
        stmt = stmt.join(ProjectRow, ProjectRow.id == ExperimentRow.project_id).where(
            ProjectRow.name == project
        )
    return stmt


def journal_query(
    *,
    project: str | None = None,
    entity: tuple[str, int] | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> Select[JournalRow]:
    stmt = select(JournalRow)
    if project is not None:
        project_id = select(ProjectRow.id).where(ProjectRow.name == project).scalar_subquery()
        stmt = stmt.where(JournalRow.project_id == project_id)
    if entity is not None:
        stmt = stmt.where(JournalRow.entity_type == entity[0], JournalRow.entity_id == entity[1])
    if action is not None:
        stmt = stmt.where(JournalRow.action == action)
    if actor is not None:
        stmt = stmt.where(JournalRow.actor == actor)
    return stmt


async def by_name(
    session: AsyncSession, row_type: type[RowT], project: str, name: str
) -> RowT | None:
    """A model, dataset or experiment by its project's name and its own."""
    columns = row_type.__table__.c
    stmt = (
        select(row_type)
        .join(ProjectRow, ProjectRow.id == columns.project_id)
        .where(ProjectRow.name == project, columns.name == name)
    )
    return (await session.scalars(stmt)).first()


def projects_query() -> Select[ProjectRow]:
    return select(ProjectRow)
