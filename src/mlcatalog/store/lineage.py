"""Lineage reads: the edges around a set of nodes."""

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from mlcatalog.store.rows import LineageEdgeRow

NodeRef = tuple[str, int]


def _any_of(
    type_column: InstrumentedAttribute[str],
    id_column: InstrumentedAttribute[int],
    refs: Iterable[NodeRef],
) -> list[ColumnElement[bool]]:
    # One IN list per node type (at most three), not an OR per node: the statement stays three
    # clauses however many nodes it asks about, and each clause can use a (type, id) index.
    ids: dict[str, set[int]] = defaultdict(set)
    for node_type, node_id in refs:
        ids[node_type].add(node_id)
    return [
        and_(type_column == node_type, id_column.in_(sorted(wanted)))
        for node_type, wanted in sorted(ids.items())
    ]


async def edges_at(
    session: AsyncSession, *, sources: Iterable[NodeRef] = (), targets: Iterable[NodeRef] = ()
) -> list[LineageEdgeRow]:
    """Edges leaving any of ``sources`` or entering any of ``targets``, oldest first (one read)."""
    wanted = [
        *_any_of(LineageEdgeRow.source_type, LineageEdgeRow.source_id, sources),
        *_any_of(LineageEdgeRow.target_type, LineageEdgeRow.target_id, targets),
    ]
    if not wanted:
        return []
    return list(
        await session.scalars(
            select(LineageEdgeRow).where(or_(*wanted)).order_by(LineageEdgeRow.id)
        )
    )
