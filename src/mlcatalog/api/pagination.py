"""Relay cursor connections paged by keyset: a cursor holds the sort key of the row it points at.

``first``/``after`` pages forwards and ``last``/``before`` backwards, as Relay clients expect.
"""

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import strawberry

from mlcatalog.api.loaders import Loaders, PageKey
from mlcatalog.catalog.errors import invalid
from mlcatalog.store import paging
from mlcatalog.store.paging import ChildList, Filters, Listing, Order, Window

T = TypeVar("T")
MAX_PAGE = 500
DEFAULT_PAGE = 50


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow (forwards: exact; backwards: whether `before` was given)."
    )
    has_previous_page: bool = strawberry.field(
        description="Items come before (backwards: exact; forwards: whether `after` was given)."
    )
    start_cursor: str | None
    end_cursor: str | None


@dataclass(frozen=True)
class ByteBudget:
    """A page also stops once its rows weigh more than ``limit`` bytes (it keeps one at least)."""

    weigh: Callable[[Any], int]
    limit: int

    def fit(self, rows: Sequence[Any]) -> int:
        """How many of ``rows``, taken in order, fit the budget."""
        used = 0
        for taken, row in enumerate(rows):
            used += self.weigh(row)
            if used > self.limit and taken > 0:
                return taken
        return len(rows)


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


def window(
    scope: str,
    order: Order,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Window:
    """The page asked for; INVALID_ARGUMENT for sizes out of range or foreign cursors."""
    if first is not None and last is not None:
        raise invalid("give first or last, not both")
    if after is not None and before is not None:
        raise invalid("give after or before, not both")
    backward = last is not None or (before is not None and first is None)
    size = last if backward else first
    if size is None:
        size = DEFAULT_PAGE
    elif not 0 <= size <= MAX_PAGE:
        raise invalid(f"{'last' if backward else 'first'} must be between 0 and {MAX_PAGE}")
    if backward and after is not None:
        raise invalid("last pages backwards: give before, not after")
    if not backward and before is not None:
        raise invalid("first pages forwards: give after, not before")
    cursor = decode_cursor(scope, order, before if backward else after)
    return Window(size, tuple(cursor) if cursor is not None else None, backward)


def encode_cursor(scope: str, key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([scope, *key]).encode()).decode()


def decode_cursor(scope: str, order: Order, cursor: str | None) -> list[Any] | None:
    """The sort key in ``cursor``; INVALID_ARGUMENT when it is malformed or from another list."""
    if cursor is None:
        return None
    if len(cursor) > 1000:
        raise invalid("not a cursor this API returned")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        raise invalid("not a cursor this API returned") from None
    if not isinstance(decoded, list) or not decoded or decoded[0] != scope:
        raise invalid("a cursor from another list or order")
    try:
        return order.parse(decoded[1:])
    except (ValueError, TypeError):
        raise invalid("not a cursor this API returned") from None


def connection(
    rows: Sequence[Any],
    page: Window,
    scope: str,
    key: Callable[[Any], Sequence[Any]],
    node: Callable[[Any], T],
    count: Callable[[], Awaitable[int]],
    budget: ByteBudget | None = None,
) -> Connection[T]:
    """Build a page from its rows plus the one beyond them that only says more exist."""
    shown, more = paging.trim(rows, page)
    if budget is not None:
        # Keep the rows nearest the cursor: the first ones forwards, the last ones backwards.
        nearest_first = shown[::-1] if page.backward else shown
        kept = budget.fit(nearest_first)
        more = more or kept < len(shown)
        shown = shown[len(shown) - kept :] if page.backward else shown[:kept]
    edges = [Edge(cursor=encode_cursor(scope, key(row)), node=node(row)) for row in shown]
    given_cursor = page.cursor is not None
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=given_cursor if page.backward else more,
            has_previous_page=more if page.backward else given_cursor,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )


async def children_connection(
    loaders: Loaders,
    spec: ChildList[Any],
    parent_id: int,
    node: Callable[[Any], T],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    filters: Filters = (),
) -> Connection[T]:
    """A page of a parent's children, read through the batching loaders."""
    page = window(spec.scope, spec.order, first, after, last, before)
    rows = await loaders.children(spec, PageKey(parent_id, page, filters))

    async def count() -> int:
        return await loaders.child_count(spec, parent_id, filters)

    return connection(rows, page, spec.scope, spec.order.key, node, count)


async def listing_connection(
    loaders: Loaders,
    listing: Listing[Any],
    node: Callable[[Any], T],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    budget: ByteBudget | None = None,
) -> Connection[T]:
    """A page of a root list; its total is counted only when the client asks for it."""
    page = window(listing.scope, listing.order, first, after, last, before)
    async with loaders.read() as session:
        rows = await paging.page(session, listing, page)

    async def count() -> int:
        async with loaders.read() as session:
            return await paging.count(session, listing)

    return connection(rows, page, listing.scope, listing.order.key, node, count, budget)
