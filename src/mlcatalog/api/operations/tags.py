"""setTags and removeTags on models, model versions and datasets."""

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode_any
from mlcatalog.api.types.common import node_of
from mlcatalog.api.types.tags import (
    TAGGED_TYPES,
    RemoveTagsInput,
    RemoveTagsPayload,
    SetTagsInput,
    SetTagsPayload,
    tag_map,
)
from mlcatalog.catalog import models


@strawberry.type
class TagMutations:
    @strawberry.mutation(
        description="Add or overwrite tags on a model, a model version or a dataset."
    )
    async def set_tags(self, info: Info, input: SetTagsInput) -> SetTagsPayload:
        entity_type, entity_id = decode_any(input.id, *TAGGED_TYPES)
        async with info.context.unit_of_work() as uow:
            row = await models.set_tags(
                uow, entity_type=entity_type, entity_id=entity_id, tags=tag_map(input.tags)
            )
        node: relay.Node = node_of(entity_type, row)
        return SetTagsPayload(node=node)

    @strawberry.mutation
    async def remove_tags(self, info: Info, input: RemoveTagsInput) -> RemoveTagsPayload:
        entity_type, entity_id = decode_any(input.id, *TAGGED_TYPES)
        async with info.context.unit_of_work() as uow:
            row = await models.remove_tags(
                uow, entity_type=entity_type, entity_id=entity_id, keys=input.keys
            )
        node: relay.Node = node_of(entity_type, row)
        return RemoveTagsPayload(node=node)
