"""The lineage query and linkLineage."""

import asyncio

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode_any
from mlcatalog.api.limits import cap
from mlcatalog.api.types.lineage import (
    Lineage,
    LineageDirection,
    LineageEdge,
    LineageNode,
    load_node,
)
from mlcatalog.catalog import lineage
from mlcatalog.catalog.errors import invalid, not_found
from mlcatalog.catalog.lineage import EdgeKind
from mlcatalog.store import queries
from mlcatalog.store.rows import LineageEdgeRow

LINEAGE_TYPES = ("ModelVersion", "DatasetVersion", "Run")
MAX_DEPTH = 20


def edge_of(row: LineageEdgeRow, depth: int) -> LineageEdge:
    return LineageEdge(
        kind=EdgeKind(row.kind),
        depth=depth,
        created_at=row.created_at,
        created_by=row.created_by,
        upstream_ref=(row.source_type, row.source_id),
        downstream_ref=(row.target_type, row.target_id),
    )


@strawberry.type
class LineageQueries:
    @strawberry.field(
        description="What fed a model version, dataset version or run, and what it fed."
    )
    async def lineage(
        self,
        info: Info,
        id: relay.GlobalID,
        direction: LineageDirection = LineageDirection.BOTH,
        depth: int = 3,
    ) -> Lineage:
        if not 1 <= depth <= MAX_DEPTH:
            raise invalid(f"depth must be between 1 and {MAX_DEPTH}")
        node_type, node_id = decode_any(id, *LINEAGE_TYPES)
        root = await load_node(info, node_type, node_id)
        if root is None:
            raise not_found(f"{node_type} {id}")
        async with info.context.loaders.read() as session:
            found = await queries.lineage_edges(
                session, node_type, node_id, direction.value, depth, limit=cap("Lineage.edges")
            )
        edges = [edge_of(row, hop) for row, hop in found]
        refs = {(node_type, node_id)}
        refs.update(ref for e in edges for ref in (e.upstream_ref, e.downstream_ref))
        refs.discard((node_type, node_id))
        # One batch per node type (the loaders group the ids), not one query per node.
        nodes = await asyncio.gather(*(load_node(info, *ref) for ref in sorted(refs)))
        return Lineage(root=root, nodes=[n for n in nodes if n is not None], edges=edges)


@strawberry.input(
    description="`downstream` came from `upstream`: a model version TRAINED_ON a dataset version…"
)
class LinkLineageInput:
    kind: EdgeKind
    upstream: relay.GlobalID
    downstream: relay.GlobalID


@strawberry.type
class LinkLineagePayload:
    edge: LineageEdge


@strawberry.type
class LineageMutations:
    @strawberry.mutation
    async def link_lineage(self, info: Info, input: LinkLineageInput) -> LinkLineagePayload:
        async with info.context.unit_of_work() as uow:
            row = await lineage.add_edge(
                uow,
                kind=input.kind,
                upstream=decode_any(input.upstream, *LINEAGE_TYPES),
                downstream=decode_any(input.downstream, *LINEAGE_TYPES),
            )
        return LinkLineagePayload(edge=edge_of(row, 1))


__all__ = ["LineageNode"]
