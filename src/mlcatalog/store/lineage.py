"""Lineage reads: the edges around a set of nodes, the bounded walk, and downstream reachability."""

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import LineageEdgeRow
from mlcatalog.store.visibility import EVERYTHING, Visible, shown_nodes

NodeRef = tuple[str, int]

# Links that could close a cycle take this transaction-scoped advisory lock on PostgreSQL before
# they look for a path, so two links that together close a cycle cannot both pass the check
# (see serialise_links). SQLite needs none: its write transactions already run one at a time.
LINEAGE_LOCK_KEY = 0x6D6C6C696E  # "mllin"


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
    session: AsyncSession,
    *,
    sources: Iterable[NodeRef] = (),
    targets: Iterable[NodeRef] = (),
    limit: int | None = None,
    visible: Visible = EVERYTHING,
) -> list[LineageEdgeRow]:
    """Edges leaving any of ``sources`` or entering any of ``targets``, oldest first (one read),
    at most ``limit`` of them, between entities of projects ``visible`` shows."""
    wanted = [
        *_any_of(LineageEdgeRow.source_type, LineageEdgeRow.source_id, sources),
        *_any_of(LineageEdgeRow.target_type, LineageEdgeRow.target_id, targets),
    ]
    if not wanted:
        return []
    stmt = (
        select(LineageEdgeRow)
        .where(or_(*wanted), *_shown(visible))
        .order_by(LineageEdgeRow.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


def _shown(visible: Visible) -> list[ColumnElement[bool]]:
    if visible.everything:
        return []
    return [
        shown_nodes(visible, LineageEdgeRow.source_type, LineageEdgeRow.source_id),
        shown_nodes(visible, LineageEdgeRow.target_type, LineageEdgeRow.target_id),
    ]


async def edges_by_kind(
    session: AsyncSession,
    side: str,
    nodes: Iterable[NodeRef],
    per_kind: int,
    visible: Visible = EVERYTHING,
) -> list[LineageEdgeRow]:
    """The oldest ``per_kind`` edges of each kind at each of ``nodes`` (``side``: "source" or
    "target"), in one read: a dataset used by 100,000 runs reads ``per_kind`` rows, not all."""
    type_column = getattr(LineageEdgeRow, f"{side}_type")
    id_column = getattr(LineageEdgeRow, f"{side}_id")
    wanted = _any_of(type_column, id_column, nodes)
    if not wanted:
        return []
    number = (
        func.row_number()
        .over(
            partition_by=(type_column, id_column, LineageEdgeRow.kind), order_by=LineageEdgeRow.id
        )
        .label("n")
    )
    ranked = select(LineageEdgeRow, number).where(or_(*wanted), *_shown(visible)).subquery()
    edge = aliased(LineageEdgeRow, ranked)
    stmt = select(edge).where(ranked.c.n <= per_kind).order_by(ranked.c.id)
    return list(await session.scalars(stmt))


@dataclass
class LineageWalk:
    """What a walk found: each node and each edge once, and where it stopped short.

    ``edges`` pairs each edge with the hop at which the walk met it (1 for the root's own edges).
    ``nodes`` lists every node reached (the root excepted) nearest first. ``frontier`` lists the
    nodes whose edges the walk may not all have followed because it reached its node or edge
    limit: a walk from each of them continues where this one stopped. Both ends of every edge
    are in the answer.
    """

    edges: list[tuple[LineageEdgeRow, int]] = field(default_factory=list)
    nodes: list[NodeRef] = field(default_factory=list)
    frontier: list[NodeRef] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.frontier)


async def walk(
    session: AsyncSession,
    root: NodeRef,
    *,
    upstream: bool,
    downstream: bool,
    depth: int,
    limit: int,
    max_edges: int,
    visible: Visible = EVERYTHING,
) -> LineageWalk:
    """Walk breadth first from ``root``, one statement per hop, at most ``limit`` nodes and
    ``max_edges`` edges.

    Upstream and downstream are two walks that advance together, each with its own visited set,
    so every node is expanded at most once per direction even where old data holds a cycle, and
    a hop reads the edges of both walks' newest nodes in one statement. The walk ends early when
    no new node was reached. When a new node would pass ``limit``, or an edge ``max_edges``, the
    edge is left out, the node it came from joins the frontier, and the walk stops after that hop.
    A hop reads no more rows than the limits can still take (plus one, which tells that it was
    cut): a node with 100,000 edges costs one bounded read, and every node that hop expanded
    joins the frontier, since the rows left unread could belong to any of them.
    """
    ends = {"up": ("target", "source"), "down": ("source", "target")}
    seen: dict[str, set[NodeRef]] = {"up": {root}, "down": {root}}
    level: dict[str, list[NodeRef]] = {
        "up": [root] if upstream else [],
        "down": [root] if downstream else [],
    }
    nodes: dict[NodeRef, None] = {}
    edges: dict[int, tuple[LineageEdgeRow, int]] = {}
    cut: dict[NodeRef, None] = {}
    hop = 0
    while hop < depth and (level["up"] or level["down"]):
        hop += 1
        budget = (limit - len(nodes)) + (max_edges - len(edges)) + 1
        rows = await edges_at(
            session, sources=level["down"], targets=level["up"], limit=budget, visible=visible
        )
        expanding = {direction: set(refs) for direction, refs in level.items()}
        level = {"up": [], "down": []}
        for row in rows:
            for direction, (near_end, far_end) in ends.items():
                near = (getattr(row, f"{near_end}_type"), getattr(row, f"{near_end}_id"))
                far = (getattr(row, f"{far_end}_type"), getattr(row, f"{far_end}_id"))
                if near not in expanding[direction]:
                    continue
                if row.id not in edges and len(edges) >= max_edges:
                    cut[near] = None
                    continue
                if far not in seen[direction]:
                    if far != root and far not in nodes and len(nodes) >= limit:
                        cut[near] = None
                        continue
                    seen[direction].add(far)
                    level[direction].append(far)
                    if far != root:
                        nodes[far] = None
                edges.setdefault(row.id, (row, hop))
        if len(rows) == budget:
            cut.update(dict.fromkeys(ref for refs in expanding.values() for ref in refs))
        if cut:
            break
    found = LineageWalk(edges=list(edges.values()), nodes=list(nodes))
    if cut:
        # The nodes reached on the last hop would have been expanded had the walk gone on.
        unexpanded = level["up"] + level["down"] if hop < depth else []
        found.frontier = list(dict.fromkeys([*cut, *unexpanded]))
    return found


async def derivation_path(session: AsyncSession, start: NodeRef, goal: NodeRef) -> list[NodeRef]:
    """The shortest downstream path from ``start`` to ``goal`` (both of one type), or [].

    Follows only edges between nodes of that type: edges between types only ever lead from
    dataset versions to runs to model versions, so no path through another type comes back.
    One recursive statement: UNION keeps each (source, target) pair once, so the recursion ends
    on the edges it can reach even where old data holds a cycle. It returns those edges only
    when ``goal`` is among them, so a link that closes no cycle reads no rows.
    """
    node_type = start[0]
    same_type = and_(
        LineageEdgeRow.source_type == node_type, LineageEdgeRow.target_type == node_type
    )
    reach = (
        select(
            LineageEdgeRow.source_id.label("source_id"), LineageEdgeRow.target_id.label("target_id")
        )
        .where(same_type, LineageEdgeRow.source_id == start[1])
        .cte("reach", recursive=True)
    )
    reach = reach.union(
        select(LineageEdgeRow.source_id, LineageEdgeRow.target_id)
        .join(reach, LineageEdgeRow.source_id == reach.c.target_id)
        .where(same_type)
    )
    reached = exists().where(reach.c.target_id == goal[1])
    pairs = await session.execute(select(reach.c.source_id, reach.c.target_id).where(reached))
    downstream: dict[int, list[int]] = defaultdict(list)
    for source_id, target_id in pairs:
        downstream[source_id].append(target_id)
    came_from: dict[int, int | None] = {start[1]: None}
    queue = deque([start[1]])
    while queue:
        node = queue.popleft()
        if node == goal[1] and node != start[1]:
            path = [node]
            while (previous := came_from[path[-1]]) is not None:
                path.append(previous)
            return [(node_type, node_id) for node_id in reversed(path)]
        for target in sorted(downstream[node]):
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return []


async def serialise_links(uow: UnitOfWork) -> None:
    """Hold the lineage lock until the transaction ends (PostgreSQL; a no-op on SQLite)."""
    if uow.dialect == "postgresql":
        await uow.session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": LINEAGE_LOCK_KEY}
        )
