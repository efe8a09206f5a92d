"""Contracts that guard the whole: the exported SDL and the migrations match the code."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from mlcatalog.api.schema import schema
from mlcatalog.store.database import Database
from mlcatalog.store.rows import Base, is_mapped

ROOT = Path(__file__).resolve().parents[1]


def test_schema_graphql_is_the_exported_schema() -> None:
    exported = schema.as_str() + "\n"
    on_disk = (ROOT / "schema.graphql").read_text()
    assert on_disk == exported, "schema.graphql is stale: run `make schema`"


async def test_migrations_create_exactly_the_mapped_tables(database: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": is_mapped}
        )
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []
