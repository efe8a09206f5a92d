"""Lineage: typed edges between dataset versions, runs and model versions."""

from sqlalchemy import select

from mlcatalog.catalog import steps
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import record
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

NodeRef = tuple[str, int]
NODE_TYPES = (EntityType.MODEL_VERSION, EntityType.DATASET_VERSION, EntityType.RUN)


async def project_of(uow: UnitOfWork, node: NodeRef) -> int:
    """The project a lineage node belongs to (NOT_FOUND when it does not exist)."""
    node_type, node_id = node
    if node_type not in NODE_TYPES:
        raise invalid(f"a {node_type} cannot take part in lineage")
    return await steps.project_of(uow, EntityType(node_type), node_id)


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
