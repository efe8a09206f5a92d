"""DataLoaders: every nested field reads through one of these, so a list costs a fixed number
of statements however long it is. Fresh per request, over the request's one read session."""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from mlcatalog.store import lineage, paging, queries
from mlcatalog.store.database import Database, ReadSession
from mlcatalog.store.paging import ChildList, Filters, Window
from mlcatalog.store.rows import (
    AliasRow,
    Base,
    DocumentRow,
    LineageEdgeRow,
    MetricRow,
    ModelVersionRow,
)
from mlcatalog.store.visibility import EVERYTHING, Visible

RowT = TypeVar("RowT", bound=Base)
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class PageKey:
    parent_id: int
    window: Window
    filters: Filters = ()


class Loaders:
    """The request's reads: DataLoaders over one read session.

    One session per request (opened on first use, closed by ``reset``) saves a connection
    checkout and a transaction per batch, and gives the whole response one consistent view.
    Batches run concurrently, so they take turns on the session under a lock.
    """

    def __init__(self, database: Database, visible: Visible = EVERYTHING) -> None:
        self.database = database
        # Lists that cross projects (lineage edges) read only entities of projects shown.
        self.visible = visible
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}
        # Child list sizes a first page's statement counted, by (scope, parent id, filters).
        self._counted: dict[tuple[str, int, Filters], int] = {}
        self._session: ReadSession | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[ReadSession]:
        async with self._lock:
            if self._session is None:
                self._session = self.database.read_session()
            yield self._session

    async def reset(self) -> None:
        """End the read session and forget cached rows (after a write, or at the request's end).

        Under the lock: a batch may still be reading (an error in a non-null field ends the
        operation while its siblings' batches run), and closing the session under it broke
        both (INTERNAL: "Cannot operate on a closed database")."""
        self._loaders.clear()
        self._counted.clear()
        async with self._lock:
            if self._session is not None:
                session, self._session = self._session, None
                await session.close()

    def _loader(
        self, name: Hashable, load: Callable[[ReadSession, list[Any]], Awaitable[Sequence[Any]]]
    ) -> DataLoader[Any, Any]:
        loader = self._loaders.get(name)
        if loader is None:

            async def batch(keys: list[Any]) -> Sequence[Any]:
                async with self.read() as session:
                    return await load(session, keys)

            loader = self._loaders[name] = DataLoader(load_fn=batch)
        return loader

    def _rows_of(self, row_type: type[RowT]) -> DataLoader[int, RowT | None]:
        async def load(session: ReadSession, ids: list[int]) -> list[RowT | None]:
            found = await queries.by_ids(session, row_type, ids)
            return [found.get(i) for i in ids]

        return self._loader(("row", row_type), load)

    async def row(self, row_type: type[RowT], row_id: int) -> RowT | None:
        return await self._rows_of(row_type).load(row_id)

    def known(self, row: RowT) -> RowT:
        """A row read some other way (by name, in a list): later loads of its id need no
        statement (the authorizer asks for a model's project through its versions)."""
        self._rows_of(type(row)).prime(row.id, row)  # type: ignore[attr-defined]
        return row

    async def rows(self, row_type: type[RowT], row_ids: Sequence[int]) -> list[RowT | None]:
        return list(await asyncio.gather(*(self.row(row_type, i) for i in row_ids)))

    async def tags(self, owner_type: str, owner_id: int) -> list[Any]:
        async def load(session: ReadSession, ids: list[int]) -> list[list[Any]]:
            found = await queries.tags_of(session, owner_type, ids)
            return [found[i] for i in ids]

        result: list[Any] = await self._loader(("tags", owner_type), load).load(owner_id)
        return result

    async def latest_version(
        self, model_id: int, stage: str | None = None
    ) -> ModelVersionRow | None:
        async def load(session: ReadSession, ids: list[int]) -> list[ModelVersionRow | None]:
            found = await queries.latest_versions(session, ids, stage)
            return [found.get(i) for i in ids]

        result: ModelVersionRow | None = await self._loader(("latest", stage), load).load(model_id)
        return result

    async def aliases(self, owner: str, owner_id: int) -> list[AliasRow]:
        """The aliases of a model (``owner`` "model") or of a model version ("version")."""

        async def load(session: ReadSession, ids: list[int]) -> list[list[AliasRow]]:
            found = await queries.aliases_of(session, owner, ids)
            return [found[i] for i in ids]

        result: list[AliasRow] = await self._loader(("aliases", owner), load).load(owner_id)
        return result

    async def metric(self, version_id: int, name: str, dataset: str | None) -> MetricRow | None:
        async def load(
            session: ReadSession, keys: list[tuple[int, str, str | None]]
        ) -> list[MetricRow | None]:
            found = await queries.metric_values(session, keys)
            return [found.get(k) for k in keys]

        result: MetricRow | None = await self._loader("metric", load).load(
            (version_id, name, dataset)
        )
        return result

    async def document(self, subject_type: str, subject_id: int) -> DocumentRow | None:
        async def load(
            session: ReadSession, keys: list[tuple[str, int]]
        ) -> list[DocumentRow | None]:
            found = await queries.documents_of(session, keys)
            return [found.get(k) for k in keys]

        result: DocumentRow | None = await self._loader("document", load).load(
            (subject_type, subject_id)
        )
        return result

    async def edges(
        self, side: str, node_type: str, node_id: int, per_kind: int
    ) -> list[LineageEdgeRow]:
        """The oldest ``per_kind`` edges of each kind whose ``side`` ("source" or "target") is
        the given node."""

        async def load(
            session: ReadSession, keys: list[tuple[str, int]]
        ) -> list[list[LineageEdgeRow]]:
            rows = await lineage.edges_by_kind(session, side, keys, per_kind, self.visible)
            found: dict[tuple[str, int], list[LineageEdgeRow]] = defaultdict(list)
            for edge in rows:
                found[(getattr(edge, f"{side}_type"), getattr(edge, f"{side}_id"))].append(edge)
            return [found[k] for k in keys]

        result: list[LineageEdgeRow] = await self._loader(("edges", side, per_kind), load).load(
            (node_type, node_id)
        )
        return result

    async def children(self, spec: ChildList[RowT], key: PageKey) -> list[RowT]:
        async def load(session: ReadSession, keys: list[PageKey]) -> list[list[RowT]]:
            # Keys that share a page shape (window, filters) are read in one statement.
            shapes: dict[tuple[Window, Filters], list[int]] = defaultdict(list)
            for k in keys:
                shapes[(k.window, k.filters)].append(k.parent_id)
            pages: dict[PageKey, list[RowT]] = {}
            for (window, filters), parent_ids in shapes.items():
                found = await paging.child_pages(session, spec, parent_ids, window, filters)
                for parent_id, rows in found.rows.items():
                    pages[PageKey(parent_id, window, filters)] = rows
                for parent_id, total in (found.totals or {}).items():
                    self._counted[(spec.scope, parent_id, filters)] = total
            return [pages[k] for k in keys]

        result: list[RowT] = await self._loader(("children", spec.scope), load).load(key)
        return result

    async def child_count(self, spec: ChildList[Any], parent_id: int, filters: Filters = ()) -> int:
        counted = self._counted.get((spec.scope, parent_id, filters))
        if counted is not None:
            return counted

        async def load(session: ReadSession, keys: list[tuple[int, Filters]]) -> list[int]:
            by_filter: dict[Filters, list[int]] = defaultdict(list)
            for parent, filter_key in keys:
                by_filter[filter_key].append(parent)
            counts: dict[tuple[int, Filters], int] = {}
            for filter_key, parents in by_filter.items():
                found = await paging.child_counts(session, spec, parents, filter_key)
                counts.update({(p, filter_key): n for p, n in found.items()})
            return [counts[k] for k in keys]

        result: int = await self._loader(("count", spec.scope), load).load((parent_id, filters))
        return result
