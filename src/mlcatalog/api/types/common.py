"""Types shared by every family: tags, enums, projects, and the node helper."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Self

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import row_number
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.rows import Base, ProjectRow

strawberry.enum(Stage, description="Where a model version is in its lifecycle.")


@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


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


class RowNode(relay.Node):
    """A node backed by one table row: ``node(id:)`` hydrates it through the row loader."""

    row_type: ClassVar[type[Base]]

    @classmethod
    def from_row(cls, row: Any) -> Self:
        raise NotImplementedError

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [row_number(i) or -1 for i in node_ids]  # a malformed id finds nothing
        rows = await info.context.loaders.rows(cls.row_type, ids)
        return [cls.from_row(row) if row is not None else None for row in rows]


@strawberry.type(description="A namespace that every model, dataset and experiment belongs to.")
class Project(RowNode):
    row_type = ProjectRow
    id: relay.NodeID[int]
    name: str
    description: str
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, row: ProjectRow) -> Self:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            created_by=row.created_by,
        )


async def project_of(info: Info, project_id: int) -> Project:
    row = await info.context.loaders.row(ProjectRow, project_id)
    assert row is not None  # a foreign key guarantees it
    return Project.from_row(row)
