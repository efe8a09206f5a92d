"""The PostgreSQL the suite starts for itself: databases come and go, and asyncpg can use them."""

import asyncpg
import pytest

from tests.realservers import postgres_or_skip


@pytest.mark.postgres
async def test_postgres_creates_and_drops_databases() -> None:
    server = postgres_or_skip()
    try:
        first = server.create_database("realservers_first")
        server.create_database("realservers_second")
        dsn = first.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            assert "PostgreSQL" in await connection.fetchval("select version()")
            names = {
                row["datname"] for row in await connection.fetch("select datname from pg_database")
            }
            assert {"realservers_first", "realservers_second"} <= names
        finally:
            await connection.close()
        server.drop_database("realservers_first")
        server.drop_database("realservers_second")
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            await asyncpg.connect(dsn)
    finally:
        server.stop()
