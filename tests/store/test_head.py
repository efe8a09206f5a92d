"""The journal's head as the response cache reads it (store/database.py): shared reads that never
answer a caller with a value read before it asked."""

import asyncio

from mlcatalog.catalog import projects
from mlcatalog.store.database import Database, Origin, Rounds


async def test_a_caller_never_joins_a_read_that_began_before_it() -> None:
    value, reads = 0, 0
    started, release = asyncio.Event(), asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        seen = value
        started.set()
        await release.wait()
        return seen

    rounds = Rounds(read)
    first = [asyncio.create_task(rounds.read()) for _ in range(5)]
    await started.wait()
    value = 1  # committed while the first read runs: its callers may miss it, later ones not
    later = [asyncio.create_task(rounds.read()) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*first) == [0] * 5
    assert await asyncio.gather(*later) == [1] * 5
    assert reads == 2  # ten callers, two reads
    assert await rounds.read() == 1 and reads == 3  # idle again: a new read


async def test_a_failed_read_fails_its_callers_and_the_next_read_runs() -> None:
    failing = True

    async def read() -> int:
        if failing:
            raise OSError("gone")
        return 7

    rounds = Rounds(read)
    results = await asyncio.gather(rounds.read(), rounds.read(), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    failing = False
    assert await rounds.read() == 7


async def test_the_head_moves_with_a_commit_made_through_another_database(
    database: Database,
) -> None:
    assert await database.journal_head() == 0
    other = Database(database.url)
    try:
        async with other.unit_of_work(Origin(actor="elsewhere")) as uow:
            await projects.create_project(uow, name="p", description="")
    finally:
        await other.dispose()
    assert await database.journal_head() > 0
