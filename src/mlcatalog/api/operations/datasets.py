"""Root queries and mutations for datasets and their versions."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.pagination import Connection, listing_connection
from mlcatalog.api.types.common import whole
from mlcatalog.api.types.datasets import (
    CreateDatasetInput,
    CreateDatasetPayload,
    CreateDatasetVersionInput,
    CreateDatasetVersionPayload,
    Dataset,
    DatasetFilter,
    DatasetVersion,
)
from mlcatalog.api.types.tags import tag_map
from mlcatalog.catalog import datasets, projects
from mlcatalog.store import queries
from mlcatalog.store.rows import DatasetRow


@strawberry.type
class DatasetQueries:
    @strawberry.field
    async def dataset(self, info: Info, project: str, name: str) -> Dataset | None:
        async with info.context.loaders.read() as session:
            row = await queries.by_name(session, DatasetRow, project, name)
        return Dataset.from_row(row) if row else None

    @strawberry.field(description="Datasets by name.")
    async def datasets(
        self,
        info: Info,
        filter: DatasetFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Dataset]:
        f = filter or DatasetFilter()
        listing = queries.datasets_listing(
            project=f.project,
            name_contains=f.name_contains,
            tag=(f.tag.key, f.tag.value or None) if f.tag else None,
            include_archived=f.include_archived,
            visible=info.context.gate.visible,
        )
        return await listing_connection(
            info.context.loaders,
            listing,
            Dataset.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )


@strawberry.type
class DatasetMutations:
    @strawberry.mutation
    async def create_dataset(self, info: Info, input: CreateDatasetInput) -> CreateDatasetPayload:
        async with info.context.unit_of_work() as uow:
            project = await projects.project_by_name(uow, input.project)
            row = await datasets.create_dataset(
                uow,
                project_id=project.id,
                name=input.name,
                owner=input.owner,
                description=input.description,
                source=input.source,
                tags=tag_map(input.tags),
            )
        return CreateDatasetPayload(dataset=Dataset.from_row(row))

    @strawberry.mutation
    async def create_dataset_version(
        self, info: Info, input: CreateDatasetVersionInput
    ) -> CreateDatasetVersionPayload:
        async with info.context.unit_of_work() as uow:
            row = await datasets.create_dataset_version(
                uow,
                dataset_id=decode(input.dataset, "Dataset"),
                label=input.label,
                uri=input.uri,
                digest=input.digest,
                size_bytes=whole(input.size_bytes, "size"),
                row_count=whole(input.row_count, "row count"),
                schema=input.schema,
                description=input.description,
            )
        return CreateDatasetVersionPayload(dataset_version=DatasetVersion.from_row(row))
