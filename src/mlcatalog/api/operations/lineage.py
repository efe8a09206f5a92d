"""The lineage query and linkLineage."""

import asyncio
from typing import Annotated

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode_any
from mlcatalog.api.limits import MAX_LINEAGE_NODES, cap, capped
from mlcatalog.api.types.lineage import (
    Lineage,
    LineageDirection,
    LineageEdge,
    LineageNode,
    load_node,
    load_nodes,
)
from mlcatalog.catalog import lineage
from mlcatalog.catalog.errors import invalid, not_found
from mlcatalog.catalog.lineage import EdgeKind
from mlcatalog.store import lineage as lineage_store
from mlcatalog.store.rows import LineageEdgeRow

LINEAGE_TYPES = ("ModelVersion", "DatasetVersion", "Run")
MAX_DEPTH = 20
# The most nodes one answer holds; a bigger graph is read in several walks from the frontier.
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
        if not 1 <= depth <= MAX_DEPTH:
            raise invalid(f"depth must be between 1 and {MAX_DEPTH}")
        if not 1 <= limit <= MAX_NODES:
            raise invalid(f"limit must be between 1 and {MAX_NODES}")
        node_type, node_id = decode_any(id, *LINEAGE_TYPES)
        root = await load_node(info, node_type, node_id)
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
            )
        nodes, frontier = await asyncio.gather(
            load_nodes(info, found.nodes), load_nodes(info, found.frontier)
        )
        return Lineage(
            root=root,
            nodes=nodes,
            edges=[edge_of(row, hop) for row, hop in capped("Lineage.edges", found.edges)],
            # Dense graphs can join the kept nodes by more edges than one answer carries.
            partial=found.partial or len(found.edges) > cap("Lineage.edges"),
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
            row = await lineage.add_edge(
                uow,
                kind=input.kind,
                upstream=decode_any(input.upstream, *LINEAGE_TYPES),
                downstream=decode_any(input.downstream, *LINEAGE_TYPES),
            )
        return LinkLineagePayload(edge=edge_of(row, 1))


__all__ = ["LineageNode"]
