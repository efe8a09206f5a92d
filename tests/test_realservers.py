"""The PostgreSQL the suite starts for itself: databases come and go, and asyncpg can use them."""

import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from tests.realservers import postgres_or_skip, start_postgres


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


@pytest.mark.postgres
async def test_a_persistent_server_keeps_its_data_across_restarts() -> None:
    postgres_or_skip().stop()  # skips here when PostgreSQL cannot run
    # Not pytest's tmp_path: the postgres user cannot enter root's private directories.
    root = Path(tempfile.mkdtemp(prefix="mlcatalog-pg-kept-"))
    server = start_postgres(root, {"shared_buffers": "64MB"})
    try:
        dsn = server.ensure_database("kept").replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        await connection.execute("create table t (x int); insert into t values (7)")
        await connection.close()
        # Started again while it runs (its starter killed): the running server, taken over.
        assert start_postgres(root).port == server.port
    finally:
        server.stop()
    assert (root / "data").is_dir()
    again = start_postgres(root)
    try:
        assert again.ensure_database("kept") == again.url("kept")  # there: not created again
        dsn = again.url("kept").replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            assert await connection.fetchval("select x from t") == 7
        finally:
            await connection.close()
    finally:
        again.stop()
        shutil.rmtree(root, ignore_errors=True)
