"""Fixtures: a migrated database per test on SQLite and on a real PostgreSQL, and an API caller."""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from mlcatalog.api.context import Context
from mlcatalog.api.schema import schema
from mlcatalog.auth.access import UNRESTRICTED, Rights
from mlcatalog.auth.principal import Principal
from mlcatalog.settings import WebhookSettings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database
from mlcatalog.store.rows import Base

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    from tests.realservers import postgres_or_skip

    server = postgres_or_skip()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "catalog.db"
    await _migrate(f"sqlite+aiosqlite:///{path}")
    return path


async def _migrate(url: str) -> None:
    database = Database(url)
    await migrate.upgrade(database)
    await database.dispose()


@pytest.fixture(scope="session")
def postgres_url(postgres: Any) -> str:
    url: str = postgres.create_database("mlcatalog_test")
    asyncio.run(_migrate(url))
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "catalog.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty catalog database, on each backend in turn."""
    db = Database(database_url)
    if db.dialect == "postgresql":
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        async with db.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    await db.dispose()


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.statements)


@dataclass
class Api:
    """Runs GraphQL operations in process against the real schema and database."""

    database: Database
    actor: str = "tester"
    search: Any = None
    access: Rights = UNRESTRICTED
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    principal: Principal | None = None  # how the actor authenticated, as the journal records

    async def run(self, query: str, **variables: Any) -> Any:
        context = Context(
            database=self.database,
            actor=self.actor,
            search=self.search,
            access=self.access,
            webhooks=self.webhooks,
            principal=self.principal,
        )
        result = await schema.execute(query, variable_values=variables, context_value=context)
        return result

    async def __call__(self, query: str, **variables: Any) -> Any:
        result = await self.run(query, **variables)
        assert not result.errors, [(e.message, e.extensions) for e in result.errors]
        return result.data

    async def error(self, query: str, **variables: Any) -> tuple[str, str]:
        """The code and message of the one error an operation must fail with."""
        result = await self.run(query, **variables)
        assert result.errors, f"expected an error, got {result.data}"
        assert len(result.errors) == 1, result.errors
        error = result.errors[0]
        assert error.extensions is not None
        return error.extensions["code"], error.message

    def count_statements(self) -> StatementCounter:
        """Record every SQL statement the read and write engines run from now on."""
        counter = StatementCounter()
        for engine in self.database.sync_engines():

            @event.listens_for(engine, "before_cursor_execute")
            def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                if not statement.startswith(("BEGIN", "PRAGMA")):
                    counter.statements.append(statement)

        return counter


@pytest.fixture
def api(database: Database) -> Api:
    return Api(database)


def in_ci() -> bool:
    return os.environ.get("CI") == "true"
