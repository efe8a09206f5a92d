"""Lineage graphs: the nodes and typed edges around an entity."""

import asyncio
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.types.common import load_node
from mlcatalog.api.types.datasets import DatasetVersion
from mlcatalog.api.types.experiments import Run
from mlcatalog.api.types.versions import ModelVersion
from mlcatalog.catalog.lineage import EdgeKind

strawberry.enum(EdgeKind, description="How two lineage nodes relate, read downstream → upstream.")

LineageNode = Annotated[ModelVersion | DatasetVersion | Run, strawberry.union("LineageNode")]

LINEAGE_TYPES = ("ModelVersion", "DatasetVersion", "Run")


async def lineage_node(info: Info, ref: tuple[str, int]) -> LineageNode | None:
    node: LineageNode | None = await load_node(info, *ref)
    return node


async def lineage_nodes(info: Info, refs: Iterable[tuple[str, int]]) -> list[LineageNode]:
    """The nodes that exist among ``refs``, in order: one batched read per node type."""
    loaded = await asyncio.gather(*(lineage_node(info, ref) for ref in refs))
    return [node for node in loaded if node is not None]


@strawberry.enum(description="Which way to walk from the starting node.")
class LineageDirection(Enum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"
    BOTH = "BOTH"


@strawberry.type(description="One edge, from the upstream node (an input) to the downstream one.")
class LineageEdge:
    kind: EdgeKind
    depth: int = strawberry.field(description="Hops from the starting node.")
    created_at: datetime
    created_by: str
    upstream_ref: strawberry.Private[tuple[str, int]]
    downstream_ref: strawberry.Private[tuple[str, int]]

    @strawberry.field
    async def upstream(self, info: Info) -> LineageNode | None:
        return await lineage_node(info, self.upstream_ref)

    @strawberry.field
    async def downstream(self, info: Info) -> LineageNode | None:
        return await lineage_node(info, self.downstream_ref)


@strawberry.type(
    description="The lineage around one node: every node reached and every edge walked, once each."
)
class Lineage:
    root: LineageNode
    nodes: list[LineageNode] = strawberry.field(
        description="Every node reached, the root excepted, nearest first."
    )
    edges: list[LineageEdge] = strawberry.field(
        description="Every edge between the root and the nodes, in the order the walk met them."
    )
    partial: bool = strawberry.field(
        description=(
            "True when the walk stopped at its node or edge limit before reaching `depth`."
        )
    )
    frontier: list[LineageNode] = strawberry.field(
        description=(
            "When partial, the nodes whose edges the walk did not all follow (reached but not "
            "expanded): walk again from each of them to see more. Empty when not partial."
        )
    )
