"""The per-request context: the database, the caller and fresh DataLoaders."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import strawberry
from strawberry.extensions import SchemaExtension

from mlcatalog.api.loaders import Loaders
from mlcatalog.search.backend import SearchBackend
from mlcatalog.store.database import Database, UnitOfWork


@dataclass
class Context:
    database: Database
    actor: str
    search: SearchBackend | None = None
    search_timeout: float = 2.0
    operation_timeout: float = 10.0
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.database)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One write transaction on the caller's behalf; reads after it see what it wrote."""
        await self.loaders.reset()
        async with self.database.unit_of_work(self.actor) as uow:
            yield uow
        await self.loaders.reset()


class EndRequestReads(SchemaExtension):
    """Close the request's read session when the operation ends."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        if isinstance(context, Context):
            await context.loaders.reset()


Info = strawberry.Info[Context, None]
