"""Cursor connections paged by keyset: a cursor holds the sort key of the row it points at."""

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from sqlalchemy import Select

from mlcatalog.api.loaders import ChildList, Filters, Loaders, PageKey
from mlcatalog.catalog.errors import invalid
from mlcatalog.store import queries
from mlcatalog.store.queries import Order

T = TypeVar("T")
MAX_PAGE = 500
DEFAULT_PAGE = 50


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list, with the list's size.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items the whole list holds (all pages).")
    async def total_count(self) -> int:
        return await self.count()


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0 or first > MAX_PAGE:
        raise invalid(f"first must be between 0 and {MAX_PAGE}, not {first}")
    return first


def encode_cursor(scope: str, key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([scope, *key]).encode()).decode()


def decode_cursor(scope: str, order: Order, cursor: str | None) -> list[Any] | None:
    """The sort key in ``cursor``; INVALID_ARGUMENT when it is malformed or from another list."""
    if cursor is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid("after is not a cursor this API returned") from None
    if not isinstance(decoded, list) or not decoded or decoded[0] != scope:
        raise invalid("after is a cursor from another list or order")
    try:
        return order.parse(decoded[1:])
    except (ValueError, TypeError):
        raise invalid("after is not a cursor this API returned") from None


def connection(
    rows: Sequence[Any],
    first: int,
    scope: str,
    key: Callable[[Any], Sequence[Any]],
    node: Callable[[Any], T],
    count: Callable[[], Awaitable[int]],
) -> Connection[T]:
    """Build a page from ``first`` + 1 fetched rows (the extra one only says a next page exists)."""
    shown = rows[:first]
    edges = [Edge(cursor=encode_cursor(scope, key(row)), node=node(row)) for row in shown]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None
        ),
        count=count,
    )


async def children_connection(
    loaders: Loaders,
    spec: ChildList[Any],
    parent_id: int,
    first: int | None,
    after: str | None,
    node: Callable[[Any], T],
    filters: Filters = (),
) -> Connection[T]:
    """A page of a parent's children, read through the batching loaders."""
    size = page_size(first)
    cursor = decode_cursor(spec.scope, spec.order, after)
    rows = await loaders.children(
        spec, PageKey(parent_id, size, tuple(cursor) if cursor is not None else None, filters)
    )

    async def count() -> int:
        return await loaders.child_count(spec, parent_id, filters)

    return connection(rows, size, spec.scope, spec.order.key, node, count)


async def query_connection(
    loaders: Loaders,
    stmt: Select[Any],
    order: Order,
    scope: str,
    first: int | None,
    after: str | None,
    node: Callable[[Any], T],
) -> Connection[T]:
    """A page of a root list; its total is counted only when the client asks for it."""
    size = page_size(first)
    cursor = decode_cursor(scope, order, after)
    async with loaders.read() as session:
        rows = await queries.page(session, stmt, order, size, cursor)

    async def count() -> int:
        async with loaders.read() as session:
            return await queries.count(session, stmt)

    return connection(rows, size, scope, order.key, node, count)
