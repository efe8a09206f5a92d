"""Migrations keep the catalog's rows, down and up again (on SQLite a table copy would cascade)."""

from sqlalchemy import func, select

from mlcatalog.store import migrate
from mlcatalog.store.database import Database
from mlcatalog.store.rows import ModelVersionRow
from tests.conftest import Api
from tests.search.builders import catalog


async def versions(database: Database) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count(ModelVersionRow.id))) or 0)


async def test_down_and_up_past_the_lifecycle_migration_keeps_every_version(
    database: Database,
) -> None:
    # Its column on `models` once went through batch mode, whose copy-and-drop of the table
    # cascaded to every model version on SQLite.
    await catalog(Api(database))
    assert await versions(database) == 3
    await migrate.downgrade(database, "20261129_0010")
    assert await versions(database) == 3
    await migrate.upgrade(database)
    assert await versions(database) == 3
