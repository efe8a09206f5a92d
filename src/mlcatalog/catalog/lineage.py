"""Lineage: typed edges between dataset versions, runs and model versions."""

from enum import StrEnum

from sqlalchemy import select

from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import record
from mlcatalog.catalog.steps import get
from mlcatalog.store import lineage as lineage_store
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import (
    DatasetRow,
    DatasetVersionRow,
    ExperimentRow,
    LineageEdgeRow,
    ModelRow,
    ModelVersionRow,
    RunRow,
    utcnow,
)


class EdgeKind(StrEnum):
    """Edges are stored upstream → downstream; the kind reads from one end to the other."""

    USED_BY = "USED_BY"  # dataset version USED_BY run
    PRODUCED = "PRODUCED"  # run PRODUCED model version
    DERIVED_FROM = "DERIVED_FROM"  # downstream DERIVED_FROM upstream (model or dataset versions)
    TRAINED_ON = "TRAINED_ON"  # model version TRAINED_ON dataset version (upstream)
    EVALUATED_ON = "EVALUATED_ON"  # model version EVALUATED_ON dataset version (upstream)


ALLOWED: dict[EdgeKind, set[tuple[str, str]]] = {
    EdgeKind.USED_BY: {("DatasetVersion", "Run")},
    EdgeKind.PRODUCED: {("Run", "ModelVersion")},
    EdgeKind.DERIVED_FROM: {("ModelVersion", "ModelVersion"), ("DatasetVersion", "DatasetVersion")},
    EdgeKind.TRAINED_ON: {("DatasetVersion", "ModelVersion")},
    EdgeKind.EVALUATED_ON: {("DatasetVersion", "ModelVersion")},
}

NodeRef = lineage_store.NodeRef

# How many nodes of a would-be cycle its error message names (the rest are counted, not listed).
CYCLE_NAMES = 8


async def project_of(uow: UnitOfWork, node: NodeRef) -> int:
    """The project a lineage node belongs to (NOT_FOUND when it does not exist)."""
    node_type, node_id = node
    if node_type == "ModelVersion":
        version = await get(uow, ModelVersionRow, node_id, "model version")
        return (await get(uow, ModelRow, version.model_id, "model")).project_id
    if node_type == "DatasetVersion":
        dataset_version = await get(uow, DatasetVersionRow, node_id, "dataset version")
        return (await get(uow, DatasetRow, dataset_version.dataset_id, "dataset")).project_id
    if node_type == "Run":
        run = await get(uow, RunRow, node_id, "run")
        return (await get(uow, ExperimentRow, run.experiment_id, "experiment")).project_id
    raise invalid(f"a {node_type} cannot take part in lineage")


def _cycle(path: list[NodeRef]) -> str:
    """``path`` (downstream → … → upstream) closed back to its start, at most CYCLE_NAMES ids."""
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
            f"so this link would close a cycle: {_cycle(path)}",
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
        action="lineage.linked",
        entity_type="LineageEdge",
        entity_id=edge.id,
        project_id=project_id,
        after={"kind": str(kind), "upstream": list(upstream), "downstream": list(downstream)},
    )
    return edge
