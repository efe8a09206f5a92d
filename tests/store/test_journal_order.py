"""The journal ordering trap (docs/architecture.md): entries commit in sequence order on PostgreSQL."""

import pytest
from sqlalchemy import select

from mlcatalog.catalog import projects
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import JournalRow


async def test_an_entry_committed_later_never_has_a_lower_sequence(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite admits one writer at a time: transactions cannot overlap")
    async with database.unit_of_work(Origin(actor="first")) as first:
        await projects.create_project(first, name="started-first", description=None)
        # A second transaction starts after the first, commits before it.
        async with database.unit_of_work(Origin(actor="second")) as second:
            await projects.create_project(second, name="committed-first", description=None)
        async with database.read() as session:
            seen_by_a_tailer = list(await session.scalars(select(JournalRow.seq)))
    async with database.read() as session:
        entries = list(await session.scalars(select(JournalRow).order_by(JournalRow.seq)))
    assert [e.actor for e in entries] == ["second", "first"]
    # A tailer that read up to the first commit and resumes above that checkpoint misses nothing.
    checkpoint = max(seen_by_a_tailer)
    assert [e.actor for e in entries if e.seq > checkpoint] == ["first"]
