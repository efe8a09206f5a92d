"""The per-request context: the database, the caller and fresh DataLoaders."""

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import strawberry

from mlcatalog.api.loaders import Loaders
from mlcatalog.store.database import Database, UnitOfWork


@dataclass
class Context:
    database: Database
    actor: str
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.database)

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One write transaction on the caller's behalf."""
        return self.database.unit_of_work(self.actor)


Info = strawberry.Info[Context, None]
