"""Apply and inspect the Alembic migrations from code (no alembic.ini needed)."""

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from mlcatalog.store.database import Database


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "mlcatalog.store:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the database to the newest migration (or to ``revision``)."""

    def run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with database.write_engine.begin() as connection:
        await connection.run_sync(run)


async def downgrade(database: Database, revision: str) -> None:
    """Take the database back to ``revision`` (tests use it to write data under an older schema
    with today's code)."""

    def run(connection: Connection) -> None:
        command.downgrade(_config(connection), revision)

    async with database.write_engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(database: Database) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(read)


async def is_up_to_date(database: Database) -> bool:
    return await current_revision(database) == head_revision()
