"""The lineage query and linkLineage."""

import asyncio
from typing import Annotated

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode_any
from mlcatalog.api.limits import LIMITS, MAX_LINEAGE_NODES, cap
from mlcatalog.api.types.lineage import (
    LINEAGE_TYPES,
    Lineage,
    LineageDirection,
    LineageEdge,
    LineageNode,
    lineage_node,
    lineage_nodes,
)
from mlcatalog.catalog import lineage
from mlcatalog.catalog.errors import not_found
from mlcatalog.catalog.lineage import EdgeKind
from mlcatalog.store import lineage as lineage_store
from mlcatalog.store.rows import LineageEdgeRow

# Checked before execution by api/limits.py; named here for the descriptions.
MAX_DEPTH = LIMITS["Query.lineage(depth)"].high
MAX_NODES = MAX_LINEAGE_NODES


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
        description=(
            "What fed a model version, dataset version or run, and what it fed: a breadth-first "
            f"walk that visits each node once and returns at most {MAX_NODES} nodes. Past that "
            "limit the answer is `partial` and its `frontier` names where to walk on from."
        )
    )
    async def lineage(
        self,
        info: Info,
        id: relay.GlobalID,
        direction: LineageDirection = LineageDirection.BOTH,
        depth: Annotated[
            int, strawberry.argument(description=f"Hops from the node, 1 to {MAX_DEPTH}.")
        ] = 3,
        limit: Annotated[
            int,
            strawberry.argument(
                description=f"At most this many nodes besides the root, 1 to {MAX_NODES}."
            ),
        ] = MAX_NODES,
    ) -> Lineage:
        node_type, node_id = decode_any(id, *LINEAGE_TYPES)
        root = await lineage_node(info, (node_type, node_id))
        if root is None:
            raise not_found(f"{node_type} {id}")
        async with info.context.loaders.read() as session:
            found = await lineage_store.walk(
                session,
                (node_type, node_id),
                upstream=direction is not LineageDirection.DOWNSTREAM,
                downstream=direction is not LineageDirection.UPSTREAM,
                depth=depth,
                limit=limit,
                max_edges=cap("Lineage.edges"),
                visible=info.context.gate.visible,
            )
        nodes, frontier = await asyncio.gather(
            lineage_nodes(info, found.nodes), lineage_nodes(info, found.frontier)
        )
        return Lineage(
            root=root,
            nodes=nodes,
            edges=[edge_of(row, hop) for row, hop in found.edges],
            partial=found.partial,
            frontier=frontier,
        )


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
            row = await lineage.link_lineage(
                uow,
                kind=input.kind,
                upstream=decode_any(input.upstream, *LINEAGE_TYPES),
                downstream=decode_any(input.downstream, *LINEAGE_TYPES),
            )
        return LinkLineagePayload(edge=edge_of(row, 1))


__all__ = ["LineageNode"]
