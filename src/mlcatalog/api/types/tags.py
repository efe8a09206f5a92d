"""Tags on models, model versions and datasets, and the mutations that set and remove them."""

from collections.abc import Iterable, Sequence
from typing import Any

import strawberry
from strawberry import relay

TAGGED_TYPES = ("Model", "ModelVersion", "Dataset")


@strawberry.type(description="A key-value label on a model, a model version or a dataset.")
class Tag:
    key: str
    value: str


@strawberry.input
class TagInput:
    key: str
    value: str


def tag_list(rows: Iterable[Any]) -> list[Tag]:
    return [Tag(key=row.key, value=row.value) for row in rows]


def tag_map(tags: Sequence[TagInput] | None) -> dict[str, str]:
    return {tag.key: tag.value for tag in tags or ()}


@strawberry.input
class SetTagsInput:
    id: relay.GlobalID = strawberry.field(description="A Model, ModelVersion or Dataset.")
    tags: list[TagInput]


@strawberry.type
class SetTagsPayload:
    node: relay.Node = strawberry.field(description="The tagged model, version or dataset.")


@strawberry.input
class RemoveTagsInput:
    id: relay.GlobalID = strawberry.field(description="A Model, ModelVersion or Dataset.")
    keys: list[str]


@strawberry.type
class RemoveTagsPayload:
    node: relay.Node
