"""Root queries and mutations for registered models."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.pagination import Connection, listing_connection
from mlcatalog.api.types.common import OrderDirection, given
from mlcatalog.api.types.models import (
    ArchiveModelInput,
    ArchiveModelPayload,
    DeleteModelInput,
    DeleteModelPayload,
    Model,
    ModelFilter,
    ModelOrder,
    RegisterModelInput,
    RegisterModelPayload,
    RestoreModelInput,
    RestoreModelPayload,
    UpdateModelInput,
    UpdateModelPayload,
)
from mlcatalog.api.types.tags import tag_map
from mlcatalog.catalog import models, projects
from mlcatalog.store import queries
from mlcatalog.store.rows import ModelRow


@strawberry.type
class ModelQueries:
    @strawberry.field(description="A model by its project and name (archived ones too).")
    async def model(self, info: Info, project: str, name: str) -> Model | None:
        async with info.context.loaders.read() as session:
            row = await queries.by_name(session, ModelRow, project, name)
        return Model.from_row(info.context.loaders.known(row)) if row else None

    @strawberry.field(description="Models, by name unless `orderBy` says otherwise.")
    async def models(
        self,
        info: Info,
        filter: ModelFilter | None = None,
        order_by: ModelOrder | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Model]:
        f = filter or ModelFilter()
        o = order_by or ModelOrder()
        listing = queries.models_listing(
            order_by=o.field.value,
            descending=o.direction == OrderDirection.DESC,
            project=f.project,
            task=f.task,
            owner=f.owner,
            name_contains=f.name_contains,
            tag=(f.tag.key, f.tag.value or None) if f.tag else None,
            stage=f.stage.value if f.stage else None,
            include_archived=f.include_archived,
            visible=info.context.gate.visible,
        )
        return await listing_connection(
            info.context.loaders,
            listing,
            lambda row: Model.from_row(info.context.loaders.known(row)),
            first=first,
            after=after,
            last=last,
            before=before,
        )


@strawberry.type
class ModelMutations:
    @strawberry.mutation
    async def register_model(self, info: Info, input: RegisterModelInput) -> RegisterModelPayload:
        async with info.context.unit_of_work() as uow:
            project = await projects.project_by_name(uow, input.project)
            row = await models.register_model(
                uow,
                project_id=project.id,
                name=input.name,
                owner=input.owner,
                description=input.description,
                task=input.task,
                tags=tag_map(input.tags),
            )
        return RegisterModelPayload(model=Model.from_row(row))

    @strawberry.mutation(
        description="Change description, owner, task or allowsSeveralInProduction; omitted"
        " fields stay."
    )
    async def update_model(self, info: Info, input: UpdateModelInput) -> UpdateModelPayload:
        changes = given(
            description=input.description,
            owner=input.owner,
            task=input.task,
            allows_several_in_production=input.allows_several_in_production,
        )
        async with info.context.unit_of_work() as uow:
            row = await models.update_model(
                uow, model_id=decode(input.id, "Model"), changes=changes
            )
        return UpdateModelPayload(model=Model.from_row(row))

    @strawberry.mutation(description="Hide a model from lists (restorable).")
    async def archive_model(self, info: Info, input: ArchiveModelInput) -> ArchiveModelPayload:
        async with info.context.unit_of_work() as uow:
            row = await models.set_archived(uow, model_id=decode(input.id, "Model"), archived=True)
        return ArchiveModelPayload(model=Model.from_row(row))

    @strawberry.mutation
    async def restore_model(self, info: Info, input: RestoreModelInput) -> RestoreModelPayload:
        async with info.context.unit_of_work() as uow:
            row = await models.set_archived(uow, model_id=decode(input.id, "Model"), archived=False)
        return RestoreModelPayload(model=Model.from_row(row))

    @strawberry.mutation(
        description="Delete a model and its versions for good; the journal keeps the record."
    )
    async def delete_model(self, info: Info, input: DeleteModelInput) -> DeleteModelPayload:
        async with info.context.unit_of_work() as uow:
            await models.delete_model(uow, model_id=decode(input.id, "Model"))
        return DeleteModelPayload(deleted_id=input.id)
