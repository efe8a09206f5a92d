"""Datasets and their versions."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.limits import cap, capped
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import RowNode, load_nodes, required_node
from mlcatalog.api.types.documents import Document
from mlcatalog.api.types.experiments import Run
from mlcatalog.api.types.projects import Project, project_of
from mlcatalog.api.types.tags import Tag, TagInput, tag_list
from mlcatalog.api.types.versions import DatasetRole, ModelVersion
from mlcatalog.catalog.lineage import EdgeKind
from mlcatalog.store.paging import VERSIONS_OF_DATASET
from mlcatalog.store.rows import DatasetRow, DatasetVersionRow


@strawberry.type(description="A dataset: a named collection of data, versioned.")
class Dataset(RowNode):
    row_type = DatasetRow
    id: relay.NodeID[int]
    name: str
    description: str
    owner: str
    source: str | None
    archived_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    project_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: DatasetRow) -> Self:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            owner=row.owner,
            source=row.source,
            archived_at=row.archived_at,
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            project_id=row.project_id,
        )

    @strawberry.field
    async def project(self, info: Info) -> Project:
        return await project_of(info, self.project_id)

    @strawberry.field
    async def tags(self, info: Info) -> list[Tag]:
        return tag_list(await info.context.loaders.tags("Dataset", self.id))

    @strawberry.field(description="Versions, newest first.")
    async def versions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection["DatasetVersion"]:
        return await children_connection(
            info.context.loaders,
            VERSIONS_OF_DATASET,
            self.id,
            DatasetVersion.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field(description="The dataset card.")
    async def card(self, info: Info) -> Document | None:
        row = await info.context.loaders.document("Dataset", self.id)
        return Document.from_row(row) if row else None


@strawberry.type(description="One immutable version of a dataset.")
class DatasetVersion(RowNode):
    row_type = DatasetVersionRow
    id: relay.NodeID[int]
    label: str
    uri: str | None  # null where the policy hides it (a sensitive field)
    digest: str | None
    size_bytes: float | None = strawberry.field(description="Bytes (Float: sizes exceed 32 bits).")
    row_count: float | None
    schema: JSON | None
    description: str
    created_at: datetime
    created_by: str
    dataset_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: DatasetVersionRow) -> Self:
        return cls(
            id=row.id,
            label=row.label,
            uri=row.uri,
            digest=row.digest,
            size_bytes=float(row.size_bytes) if row.size_bytes is not None else None,
            row_count=float(row.row_count) if row.row_count is not None else None,
            schema=JSON(row.schema) if row.schema is not None else None,
            description=row.description,
            created_at=row.created_at,
            created_by=row.created_by,
            dataset_id=row.dataset_id,
        )

    @strawberry.field
    async def dataset(self, info: Info) -> Dataset:
        dataset: Dataset = await required_node(info, "Dataset", self.dataset_id)
        return dataset

    @strawberry.field(description="Model versions trained (or evaluated, by `role`) on this data.")
    async def models(
        self, info: Info, role: DatasetRole = DatasetRole.TRAINING
    ) -> list[ModelVersion]:
        edges = await info.context.loaders.edges(
            "source", "DatasetVersion", self.id, per_kind=cap("DatasetVersion.models")
        )
        ids = capped("DatasetVersion.models", [e.target_id for e in edges if e.kind == role.value])
        return await load_nodes(info, "ModelVersion", ids)

    @strawberry.field(description="Runs that read this data.")
    async def runs(self, info: Info) -> list[Run]:
        edges = await info.context.loaders.edges(
            "source", "DatasetVersion", self.id, per_kind=cap("DatasetVersion.runs")
        )
        used = [e.target_id for e in edges if e.kind == EdgeKind.USED_BY]
        ids = capped("DatasetVersion.runs", used)
        return await load_nodes(info, "Run", ids)


@strawberry.input
class DatasetFilter:
    project: str | None = None
    name_contains: str | None = None
    tag: TagInput | None = None
    include_archived: bool = False


@strawberry.input
class CreateDatasetInput:
    project: str
    name: str
    description: str | None = None
    owner: str | None = None
    source: str | None = None
    tags: list[TagInput] | None = None


@strawberry.type
class CreateDatasetPayload:
    dataset: Dataset


@strawberry.input
class CreateDatasetVersionInput:
    dataset: relay.GlobalID
    label: str = strawberry.field(description="e.g. v3 or 2026-11-01; unique within the dataset.")
    uri: str
    digest: str | None = None
    size_bytes: float | None = None
    row_count: float | None = None
    schema: JSON | None = None
    description: str | None = None


@strawberry.type
class CreateDatasetVersionPayload:
    dataset_version: DatasetVersion
