"""Lineage: typed edges between dataset versions, runs and model versions."""

from collections.abc import Sequence

from sqlalchemy import insert, select

from mlcatalog.catalog import steps
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import record
from mlcatalog.catalog.lifecycle import refuse_locked
from mlcatalog.store import lineage as lineage_store
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, EntityType, LineageLinked
from mlcatalog.store.journal import EdgeKind as EdgeKind  # the kinds are the journal's too
from mlcatalog.store.rows import LineageEdgeRow, utcnow

ALLOWED: dict[EdgeKind, set[tuple[str, str]]] = {
    EdgeKind.USED_BY: {("DatasetVersion", "Run")},
    EdgeKind.PRODUCED: {("Run", "ModelVersion")},
    EdgeKind.DERIVED_FROM: {("ModelVersion", "ModelVersion"), ("DatasetVersion", "DatasetVersion")},
    EdgeKind.TRAINED_ON: {("DatasetVersion", "ModelVersion")},
    EdgeKind.EVALUATED_ON: {("DatasetVersion", "ModelVersion")},
}

NodeRef = lineage_store.NodeRef
NODE_TYPES = (EntityType.MODEL_VERSION, EntityType.DATASET_VERSION, EntityType.RUN)

# How many nodes of a would-be cycle its error message names (the rest are counted, not listed).
CYCLE_NAMES = 8


async def project_of(uow: UnitOfWork, node: NodeRef) -> int:
    """The project a lineage node belongs to (NOT_FOUND when it does not exist)."""
    node_type, node_id = node
    if node_type not in NODE_TYPES:
        raise invalid(f"a {node_type} cannot take part in lineage")
    return await steps.project_of(uow, EntityType(node_type), node_id)


def _cycle(path: list[NodeRef], named: bool = True) -> str:
    """``path`` (downstream → … → upstream) closed back to its start, at most CYCLE_NAMES ids;
    only its length when not ``named`` (its nodes may be in projects the caller does not see)."""
    if not named:
        return f"{path[0][0]}s, {len(path)} of them"
    ids = [str(node_id) for _, node_id in path] + [str(path[0][1])]
    if len(ids) > CYCLE_NAMES:
        head, tail = CYCLE_NAMES // 2, CYCLE_NAMES - CYCLE_NAMES // 2
        ids = [*ids[:head], f"… {len(ids) - head - tail} more …", *ids[-tail:]]
    return f"{path[0][0]} {' → '.join(ids)}"


async def _refuse_cycles(uow: UnitOfWork, upstream: NodeRef, downstream: NodeRef) -> None:
    """Refuse a link whose downstream already leads to its upstream: lineage stays acyclic.

    Only a link between two nodes of one type (DERIVED_FROM) can close a cycle: ALLOWED links
    other types only forward, dataset version → run → model version, so no path returns. Such
    links take the lineage lock before looking (PostgreSQL), so of two concurrent links that
    together would close a cycle, the second waits for the first to commit, then sees its edge
    and is refused; without the lock each would look before the other committed and both pass.
    """
    if upstream[0] != downstream[0]:
        return
    await lineage_store.serialise_links(uow)
    path = await lineage_store.derivation_path(uow.session, downstream, upstream)
    if path:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"{downstream[0]} {downstream[1]} already leads to {upstream[0]} {upstream[1]}, "
            f"so this link would close a cycle: {_cycle(path, uow.visible.everything)}",
        )


async def link_new_versions(
    uow: UnitOfWork, edges: Sequence[tuple[EdgeKind, NodeRef, int, int]]
) -> None:
    """Edges (kind, upstream, version id, the version's project) into versions this unit of work
    created, their upstreams checked by the caller: a new version can close no cycle and hold no
    edge yet, so all go in one INSERT (add_edge checks and writes one at a time)."""
    if not edges:
        return
    now = utcnow()
    values = [
        {
            "kind": kind,
            "source_type": upstream[0],
            "source_id": upstream[1],
            "target_type": EntityType.MODEL_VERSION,
            "target_id": version_id,
            "created_at": now,
            "created_by": uow.actor,
        }
        for kind, upstream, version_id, _ in edges
    ]
    table = LineageEdgeRow.__table__
    connection = await uow.session.connection()
    inserted = await connection.execute(
        insert(table).returning(  # type: ignore[arg-type]
            table.c.id, table.c.kind, table.c.source_type, table.c.source_id, table.c.target_id
        ),
        values,
    )
    id_of = {tuple(row[1:]): row[0] for row in inserted}
    for kind, upstream, version_id, project_id in edges:
        record(
            uow,
            Action.LINEAGE_LINKED,
            id_of[kind, upstream[0], upstream[1], version_id],
            project_id=project_id,
            after=LineageLinked(
                kind=kind,
                upstream=(EntityType(upstream[0]), upstream[1]),
                downstream=(EntityType.MODEL_VERSION, version_id),
            ),
        )


async def add_edge(
    uow: UnitOfWork, *, kind: EdgeKind, upstream: NodeRef, downstream: NodeRef
) -> LineageEdgeRow:
    if (upstream[0], downstream[0]) not in ALLOWED[kind]:
        allowed = " or ".join(f"{up} → {down}" for up, down in sorted(ALLOWED[kind]))
        raise invalid(f"a {kind} edge links {allowed}, not {upstream[0]} → {downstream[0]}")
    if upstream == downstream:
        raise invalid("an entity cannot be its own lineage")
    await project_of(uow, upstream)
    project_id = await project_of(uow, downstream)
    await _refuse_cycles(uow, upstream, downstream)
    exists = await uow.session.scalar(
        select(LineageEdgeRow.id).where(
            LineageEdgeRow.kind == kind,
            LineageEdgeRow.source_type == upstream[0],
            LineageEdgeRow.source_id == upstream[1],
            LineageEdgeRow.target_type == downstream[0],
            LineageEdgeRow.target_id == downstream[1],
        )
    )
    if exists:
        raise CatalogError(ErrorCode.ALREADY_EXISTS, "this lineage edge already exists")
    edge = LineageEdgeRow(
        kind=kind,
        source_type=upstream[0],
        source_id=upstream[1],
        target_type=downstream[0],
        target_id=downstream[1],
        created_at=utcnow(),
        created_by=uow.actor,
    )
    uow.session.add(edge)
    await uow.session.flush()
    record(
        uow,
        Action.LINEAGE_LINKED,
        edge.id,
        project_id=project_id,
        after=LineageLinked(
            kind=kind,
            upstream=(EntityType(upstream[0]), upstream[1]),
            downstream=(EntityType(downstream[0]), downstream[1]),
        ),
    )
    return edge


async def link_lineage(
    uow: UnitOfWork, *, kind: EdgeKind, upstream: NodeRef, downstream: NodeRef
) -> LineageEdgeRow:
    """Link two existing nodes (``add_edge`` also links a version being created): a version in
    PRODUCTION takes no new lineage into it until it leaves the stage."""
    if downstream[0] == EntityType.MODEL_VERSION:
        version = await steps.lock_version(uow, downstream[1])
        refuse_locked(version, "lineage")
    return await add_edge(uow, kind=kind, upstream=upstream, downstream=downstream)
