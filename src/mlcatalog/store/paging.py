"""Keyset paging: the orders lists are read in, a page forwards or backwards, and the lists of
children (a model's versions, a version's metrics…) read for many parents in one statement."""

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from mlcatalog.store.rows import (
    Base,
    CommentRow,
    DatasetVersionRow,
    DeploymentRow,
    DocumentRevisionRow,
    MetricRow,
    ModelVersionRow,
    QualityGateRow,
    RunMetricRow,
    RunRow,
    StageTransitionRequestRow,
    UtcDateTime,
    WebhookDeliveryRow,
    WebhookRow,
)

RowT = TypeVar("RowT", bound=Base)
StmtT = TypeVar("StmtT")

# The read path's statements, built once per shape with bound parameters for what varies (ids,
# sizes): building a select, its subquery and its cache key anew cost more CPU per request than
# executing it did. Shapes that carry client values (filters) are many: the store starts over
# when it is full.
_PREPARED: dict[Hashable, Any] = {}
MAX_PREPARED = 1000


def prepared(key: Hashable, build: Callable[[], StmtT]) -> StmtT:
    """The statement of shape ``key``, built by ``build`` the first time it is asked for."""
    stmt = _PREPARED.get(key)
    if stmt is None:
        if len(_PREPARED) >= MAX_PREPARED:
            _PREPARED.clear()
        stmt = _PREPARED[key] = build()
    return stmt


Filters = tuple[tuple[str, Any], ...]
"""A child list's filter values, hashable so that equal page requests share a batch."""


@dataclass(frozen=True)
class Order:
    """A keyset order: columns (the last one unique) and whether each sorts descending."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: tuple[bool, ...]

    def key(self, row: Any) -> list[Any]:
        return [_plain(getattr(row, column.key)) for column in self.columns]

    def parse(self, values: Sequence[Any]) -> list[Any]:
        """A sort key read back from a cursor; ValueError when it cannot be one of this order.

        A cursor comes from the client, so each value must be one its column can hold (a key
        out of range failed in the driver, as an internal error)."""
        if len(values) != len(self.columns):
            raise ValueError("cursor key has the wrong length")
        return [
            _key_value(column, value) for column, value in zip(self.columns, values, strict=True)
        ]

    def reversed(self) -> "Order":
        return Order(self.columns, tuple(not d for d in self.descending))

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


# The range of an integer column: 32 bits for Integer (PostgreSQL's integer; SQLite holds more,
# but no id, number or revision the API hands out goes past it), 64 for BigInteger.
INTEGER_RANGES: dict[type[Integer], tuple[int, int]] = {
    BigInteger: (-(2**63), 2**63 - 1),
    Integer: (-(2**31), 2**31 - 1),
}


def _key_value(column: InstrumentedAttribute[Any], value: Any) -> Any:
    """``value`` as a key of ``column``; ValueError unless the column could hold it."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        if moment is None or moment.tzinfo is None:
            raise ValueError("cursor holds no timestamp")
        try:
            moment.astimezone(UTC)  # as it is bound
        except OverflowError:  # at the ends of the calendar
            raise ValueError("cursor timestamp is out of range") from None
        return moment
    if isinstance(value, bool) or not isinstance(value, kind.python_type):
        raise ValueError("cursor value has the wrong type")
    if isinstance(value, int):
        low, high = INTEGER_RANGES[BigInteger if isinstance(kind, BigInteger) else Integer]
        if not low <= value <= high:
            raise ValueError("cursor value is out of range")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("cursor value is not a finite number")
    elif isinstance(value, str):
        if len(value) > (getattr(kind, "length", None) or MAX_KEY_TEXT) or "\x00" in value:
            raise ValueError("cursor text is too long or holds a NUL character")
        value.encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate
    return value


MAX_KEY_TEXT = 1000  # characters of a text key whose column declares no length


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@dataclass(frozen=True)
class Window:
    """Which page to read: ``size`` rows after ``cursor``, or before it when ``backward``."""

    size: int
    cursor: tuple[Any, ...] | None = None
    backward: bool = False


@dataclass(frozen=True)
class Listing(Generic[RowT]):
    """A root list (models, projects, the journal…): its rows, its order and its cursor scope."""

    scope: str
    stmt: Select[Any]
    order: Order


async def page(session: AsyncSession, listing: Listing[RowT], window: Window) -> list[RowT]:
    """The page's rows in list order, plus one row beyond them that says more exist.

    Backwards the extra row comes first; ``trim`` drops it.
    """
    order = listing.order.reversed() if window.backward else listing.order
    stmt = listing.stmt
    if window.cursor is not None:
        stmt = stmt.where(order.after(window.cursor))
    rows = list(await session.scalars(stmt.order_by(*order.by()).limit(window.size + 1)))
    return rows[::-1] if window.backward else rows


def trim(rows: Sequence[RowT], window: Window) -> tuple[list[RowT], bool]:
    """The page's rows and whether rows lie beyond it (in the direction it was read)."""
    more = len(rows) > window.size
    if not more:
        return list(rows), False
    return (list(rows[1:]) if window.backward else list(rows[: window.size])), True


async def count(session: AsyncSession, listing: Listing[Any]) -> int:
    stmt = select(func.count()).select_from(listing.stmt.order_by(None).subquery())
    return int(await session.scalar(stmt) or 0)


@dataclass(frozen=True)
class ChildList(Generic[RowT]):
    """A paged list of children under a parent row (a model's versions, a version's metrics…)."""

    scope: str
    row_type: type[RowT]
    parent: InstrumentedAttribute[int]
    order: Order
    where: Callable[[Filters], list[ColumnElement[bool]]] = field(default=lambda _: [])


@dataclass
class ChildPages(Generic[RowT]):
    """A page of each parent's children (plus one beyond), and, for a first page (no cursor),
    how many children each parent has: the page's statement counts them too."""

    rows: dict[int, list[RowT]]
    totals: dict[int, int] | None


async def child_pages(
    session: AsyncSession,
    spec: ChildList[RowT],
    parent_ids: Iterable[int],
    window: Window,
    filters: Filters = (),
) -> ChildPages[RowT]:
    """A page of each parent's children, in one statement: a window per parent."""
    ids = list(parent_ids)
    # Without a cursor the window sees each parent's whole list: its size is one more window
    # function in the same pass, which saves the count's statement (totalCount).
    counted = window.cursor is None

    def build() -> Select[Any]:
        order = spec.order.reversed() if window.backward else spec.order
        parent = spec.parent
        number = func.row_number().over(partition_by=parent, order_by=order.by()).label("n")
        total = func.count().over(partition_by=parent).label("total")
        inner = select(spec.row_type, number, *([total] if counted else [])).where(
            parent.in_(bindparam("ids", expanding=True)), *spec.where(filters)
        )
        if window.cursor is not None:
            inner = inner.where(order.after(window.cursor))
        ranked = inner.subquery()
        return (
            select(aliased(spec.row_type, ranked), ranked.c.total if counted else ranked.c.n)
            .where(ranked.c.n <= bindparam("limit"))
            .order_by(ranked.c[parent.key], ranked.c.n)
        )

    shape = ("child_pages", spec.scope, window.backward, filters)
    # A cursor's values are in the statement: a later page builds its own.
    stmt = build() if window.cursor is not None else prepared(shape, build)
    result = await session.execute(stmt, {"ids": ids, "limit": window.size + 1})
    parent_key = spec.parent.key
    pages: dict[int, list[RowT]] = {parent_id: [] for parent_id in ids}
    totals = dict.fromkeys(ids, 0)
    for row, total in result:
        parent_id = getattr(row, parent_key)
        pages[parent_id].append(row)
        totals[parent_id] = total
    if window.backward:
        pages = {parent_id: rows[::-1] for parent_id, rows in pages.items()}
    return ChildPages(pages, totals if counted else None)


async def child_counts(
    session: AsyncSession, spec: ChildList[Any], parent_ids: Iterable[int], filters: Filters = ()
) -> dict[int, int]:
    ids = list(parent_ids)
    parent = spec.parent
    stmt = (
        select(parent, func.count()).where(parent.in_(ids), *spec.where(filters)).group_by(parent)
    )
    counts = {parent_id: 0 for parent_id in ids}
    counts.update({row[0]: int(row[1]) for row in await session.execute(stmt)})
    return counts


def _filter(filters: Filters, name: str) -> Any:
    return dict(filters).get(name)


VERSIONS_OF_MODEL = ChildList(
    scope="model.versions",
    row_type=ModelVersionRow,
    parent=ModelVersionRow.model_id,
    order=Order((ModelVersionRow.number,), (True,)),
    where=lambda f: (
        [ModelVersionRow.stage.in_(_filter(f, "stages"))] if _filter(f, "stages") else []
    ),
)
METRICS_OF_VERSION = ChildList(
    scope="version.metrics",
    row_type=MetricRow,
    parent=MetricRow.version_id,
    order=Order((MetricRow.name, MetricRow.id), (False, False)),
    where=lambda f: [MetricRow.name == _filter(f, "name")] if _filter(f, "name") else [],
)
COMMENTS_OF_VERSION = ChildList(
    scope="version.comments",
    row_type=CommentRow,
    parent=CommentRow.version_id,
    order=Order((CommentRow.id,), (False,)),
)
REVISIONS_OF_DOCUMENT = ChildList(
    scope="document.revisions",
    row_type=DocumentRevisionRow,
    parent=DocumentRevisionRow.document_id,
    order=Order((DocumentRevisionRow.revision,), (True,)),
)
VERSIONS_OF_DATASET = ChildList(
    scope="dataset.versions",
    row_type=DatasetVersionRow,
    parent=DatasetVersionRow.dataset_id,
    order=Order((DatasetVersionRow.id,), (True,)),
)
RUNS_OF_EXPERIMENT = ChildList(
    scope="experiment.runs",
    row_type=RunRow,
    parent=RunRow.experiment_id,
    order=Order((RunRow.id,), (True,)),
)
METRICS_OF_RUN = ChildList(
    scope="run.metrics",
    row_type=RunMetricRow,
    parent=RunMetricRow.run_id,
    order=Order((RunMetricRow.name, RunMetricRow.step, RunMetricRow.id), (False, False, False)),
    where=lambda f: [RunMetricRow.name == _filter(f, "name")] if _filter(f, "name") else [],
)


def _deployment_filters(f: Filters) -> list[ColumnElement[bool]]:
    where = []
    if environment := _filter(f, "environment"):
        where.append(DeploymentRow.environment == environment)
    if statuses := _filter(f, "statuses"):
        where.append(DeploymentRow.status.in_(statuses))
    return where


DEPLOYMENTS_OF_VERSION = ChildList(
    scope="version.deployments",
    row_type=DeploymentRow,
    parent=DeploymentRow.version_id,
    order=Order((DeploymentRow.environment, DeploymentRow.id), (False, False)),
    where=_deployment_filters,
)
DEPLOYMENTS_OF_MODEL = ChildList(
    scope="model.deployments",
    row_type=DeploymentRow,
    parent=DeploymentRow.model_id,
    order=Order((DeploymentRow.environment, DeploymentRow.id), (False, False)),
    where=_deployment_filters,
)


REQUESTS_OF_MODEL = ChildList(
    scope="model.transitionRequests",
    row_type=StageTransitionRequestRow,
    parent=StageTransitionRequestRow.model_id,
    order=Order((StageTransitionRequestRow.id,), (True,)),
    where=lambda f: (
        [StageTransitionRequestRow.status == _filter(f, "status")] if _filter(f, "status") else []
    ),
)
GATES_OF_PROJECT = ChildList(
    scope="project.qualityGates",
    row_type=QualityGateRow,
    parent=QualityGateRow.project_id,
    order=Order((QualityGateRow.id,), (False,)),
)
WEBHOOKS_OF_PROJECT = ChildList(
    scope="project.webhooks",
    row_type=WebhookRow,
    parent=WebhookRow.project_id,
    order=Order((WebhookRow.id,), (False,)),
)
DELIVERIES_OF_WEBHOOK = ChildList(
    scope="webhook.deliveries",
    row_type=WebhookDeliveryRow,
    parent=WebhookDeliveryRow.webhook_id,
    order=Order((WebhookDeliveryRow.id,), (True,)),  # newest first
)
