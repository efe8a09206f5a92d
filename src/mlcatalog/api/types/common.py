"""What every family shares: row-backed nodes (built by type name, so families need not import
each other), the order direction, and the helpers that map inputs."""

import math
from collections.abc import Iterable
from enum import Enum
from typing import Any, ClassVar, Self

import strawberry
from strawberry import UNSET, relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import row_id
from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import invalid, not_found
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.rows import Base

strawberry.enum(Stage, description="Where a model version is in its lifecycle.")


@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


class RowNode(relay.Node):
    """A node backed by one table row: ``node(id:)`` hydrates it through the row loader.

    Every subclass registers itself by its GraphQL name: families whose types point at each other
    (a version's training data, a dataset version's models) build each other through ``node_of``.
    """

    row_type: ClassVar[type[Base]]
    by_name: ClassVar[dict[str, type["RowNode"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RowNode.by_name[cls.__name__] = cls

    @classmethod
    def from_row(cls, row: Any) -> Self:
        raise NotImplementedError

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [row_id(i) for i in node_ids]
        rows = await info.context.loaders.rows(cls.row_type, ids)
        return [cls.from_row(row) if row is not None else None for row in rows]


def node_of(type_name: str, row: Any) -> Any:
    """The GraphQL object of ``row``, a row of the row-backed type named ``type_name``."""
    return RowNode.by_name[type_name].from_row(row)


async def load_node(info: Info, type_name: str, row_id: int) -> Any:
    """The object of a row-backed type by its row id (None when the row is gone)."""
    node_type = RowNode.by_name[type_name]
    row = await info.context.loaders.row(node_type.row_type, row_id)
    return node_type.from_row(row) if row is not None else None


async def load_nodes(info: Info, type_name: str, row_ids: Iterable[int]) -> list[Any]:
    """The objects of the rows that still exist, in the order of ``row_ids``, in one batch."""
    node_type = RowNode.by_name[type_name]
    rows = await info.context.loaders.rows(node_type.row_type, list(dict.fromkeys(row_ids)))
    return [node_type.from_row(row) for row in rows if row is not None]


async def required_node(info: Info, type_name: str, row_id: int) -> Any:
    """The object a foreign key points at: it exists, unless deleted within this request."""
    node = await load_node(info, type_name, row_id)
    if node is None:
        raise not_found(f"{type_name} {row_id}")
    return node


def given(**fields: Any) -> dict[str, Any]:
    """The fields a client actually sent (UNSET ones are left alone; null clears)."""
    return {key: value for key, value in fields.items() if value is not UNSET}


def whole(value: float | None, field: str) -> int | None:
    """GraphQL Int has 32 bits; sizes travel as Float and must be whole numbers from 0 to
    2**63 - 1, what their BigInteger columns hold (1e30 failed in the database as INTERNAL)."""
    if value is None:
        return None
    if not math.isfinite(value) or value != int(value):
        raise invalid(f"{field} must be a whole number")
    if not 0 <= value <= validation.MAX_BIG:
        raise invalid(f"{field} must be between 0 and {validation.MAX_BIG}")
    return int(value)
