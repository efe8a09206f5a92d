"""``mlcatalog audit verify``: exit 0 on an intact journal, 1 naming the first bad entry."""

import asyncio

from click.testing import Result
from sqlalchemy import delete, make_url, select, update
from typer.testing import CliRunner

from mlcatalog.catalog import projects
from mlcatalog.cli.app import app
from mlcatalog.store.database import Database, Origin, display_url
from mlcatalog.store.rows import JournalHeadRow, JournalRow

SECRET = "not-to-be-shown"


def with_password(url: str) -> str:
    """The URL with a password (the test server trusts its clients, so any will do)."""
    if url.startswith("sqlite"):
        return url
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


async def audit_verify(url: str, *args: str) -> Result:
    env = {"MLCATALOG_DATABASE_URL": url}
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, ["audit", "verify", *args], env=env)


async def journal_of(database: Database, count: int) -> None:
    for n in range(count):
        async with database.unit_of_work(Origin(actor="cli")) as uow:
            await projects.create_project(uow, name=f"p{n}", description=None)


async def test_an_intact_journal_exits_0(database: Database) -> None:
    url = with_password(database.url)
    result = await audit_verify(url)
    assert result.exit_code == 0, result.output
    assert "the journal is empty" in result.output
    await journal_of(database, 5)
    result = await audit_verify(url, "--batch", "2")
    assert result.exit_code == 0, result.output
    assert f"{display_url(url)}: journal intact, 5 entries" in result.output
    assert "head: 5:" in result.output
    assert SECRET not in result.output


async def test_a_deleted_entry_exits_1_naming_the_first_bad_one(database: Database) -> None:
    url = with_password(database.url)
    await journal_of(database, 5)
    async with database.write_engine.begin() as connection:
        await connection.execute(delete(JournalRow).where(JournalRow.seq == 3))
    result = await audit_verify(url)
    assert result.exit_code == 1, result.output
    assert "journal chain broken at entry 4 (missing)" in result.output
    assert "the 2 entries before it verify" in result.output
    assert SECRET not in result.output


async def test_a_journal_cut_short_exits_1_against_the_head_recorded(database: Database) -> None:
    await journal_of(database, 5)
    result = await audit_verify(database.url)
    head = result.output.split("head: ")[1].split()[0]
    assert (await audit_verify(database.url, "--head", head)).exit_code == 0
    async with database.write_engine.begin() as connection:
        await connection.execute(delete(JournalRow).where(JournalRow.seq >= 4))
    plain = await audit_verify(database.url)
    assert plain.exit_code == 1, plain.output  # the head the appends recorded sees it…
    async with database.write_engine.begin() as connection:
        third = select(JournalRow.hash).where(JournalRow.seq == 3).scalar_subquery()
        await connection.execute(update(JournalHeadRow).values(seq=3, hash=third))
    plain = await audit_verify(database.url)
    assert plain.exit_code == 0, plain.output  # …until that row is moved too…
    result = await audit_verify(database.url, "--head", head)
    assert result.exit_code == 1, result.output  # …the head recorded elsewhere can
    assert "broken at entry 5 (truncated): the chain ends at entry 3" in result.output
    assert (await audit_verify(database.url, "--head", "5:abc")).exit_code == 2
