"""The journal's hash chain: appends link, verify finds every edit, deletion and reordering."""

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, delete, event, func, insert, select, text, update

from mlcatalog.catalog import models, projects, versions
from mlcatalog.store import audit, migrate
from mlcatalog.store.audit import GENESIS, Fault, Verification
from mlcatalog.store.database import ORIGIN_CHARS, Database, Origin
from mlcatalog.store.rows import JournalHeadRow, JournalRow, Json, UtcDateTime, utcnow


async def journal_of(database: Database, count: int, prefix: str = "p") -> None:
    """``count`` entries, in units of work of one, two and three entries."""
    written = 0
    while written < count:
        async with database.unit_of_work(Origin(actor=f"writer-{written}")) as uow:
            for _ in range(min(1 + written % 3, count - written)):
                await projects.create_project(
                    uow, name=f"{prefix}{written}", description="d" * written
                )
                written += 1


async def verify(
    database: Database, batch: int = 4, head: tuple[int, str] | None = None
) -> Verification:
    async with database.read() as session:
        return await audit.verify(session, batch=batch, head=head)


async def tamper(database: Database, *statements: Any) -> None:
    async with database.write_engine.begin() as connection:
        for statement in statements:
            await connection.execute(statement)


async def test_an_empty_journal_verifies(database: Database) -> None:
    result = await verify(database)
    assert result.intact and result.entries == 0 and result.head_seq is None


async def test_appends_chain_each_entry_to_the_one_before(database: Database) -> None:
    await journal_of(database, 10)
    async with database.read() as session:
        entries = list(await session.scalars(select(JournalRow).order_by(JournalRow.seq)))
    assert [e.seq for e in entries] == list(range(1, 11))
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    # Batches of 4 cross units of work and end exactly on the last entry too.
    for batch in (1, 4, 5, 1000):
        result = await verify(database, batch)
        assert result.intact, result
        assert (result.entries, result.head_seq, result.head_hash) == (10, 10, entries[-1].hash)


async def test_a_unit_of_work_reads_the_chain_once_however_many_entries(
    database: Database,
) -> None:
    await journal_of(database, 1)
    statements: list[str] = []

    @event.listens_for(database.write_engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async with database.unit_of_work(Origin(actor="many")) as uow:
        for n in range(5):
            await projects.create_project(uow, name=f"many-{n}", description=None)
    reads = [s for s in statements if "FROM journal" in s or "generate_series" in s]
    assert len(reads) == 1, reads
    assert (await verify(database)).intact


async def test_numbers_hash_alike_however_the_database_returns_them(database: Database) -> None:
    # JSONB gives 1e300 back as a 301-digit integer, 1.50 as 1.50; SQLite's JSON as written.
    odd = {"big": 1e300, "int": 10**30, "half": 1.5, "one": 1.0, "tiny": 1e-7, "neg": -0.0}
    async with database.unit_of_work(Origin(actor="numbers")) as uow:
        uow.journal.append(
            JournalRow(
                at=utcnow(),
                actor="numbers",
                action="project.created",
                entity_type="PROJECT",
                entity_id=1,
                project_id=None,
                changes={"before": {}, "after": {"values": odd, "text": "ünïcødé ✓"}},
            )
        )
    assert (await verify(database)).intact


async def test_an_entry_left_to_the_column_defaults_is_hashed_with_them(database: Database) -> None:
    async with database.unit_of_work(Origin(actor="defaults")) as uow:
        uow.journal.append(
            JournalRow(
                actor="defaults", action="project.created", entity_type="PROJECT", entity_id=1
            )
        )
    async with database.read() as session:
        entry = await session.get_one(JournalRow, 1)
    assert entry.changes == {} and entry.at is not None
    assert (await verify(database)).intact


def test_the_canonical_encoding() -> None:
    assert audit.canonical(1e300) == audit.canonical(10**300) == "1e300"
    assert audit.canonical(1.0) == audit.canonical(1) == "1"
    assert audit.canonical(1500) == "15e2" and audit.canonical(-0.25) == "-25e-2"
    assert audit.canonical(0.0) == audit.canonical(-0.0) == "0"
    assert audit.canonical({"b": [1, None, True], "a": "é"}) == '{"a":"é","b":[1,null,true]}'
    with pytest.raises(ValueError):
        audit.canonical(float("nan"))


async def test_an_edited_entry_is_found(database: Database) -> None:
    await journal_of(database, 8)
    await tamper(
        database,
        update(JournalRow)
        .where(JournalRow.seq == 5)
        .values(changes={"before": {}, "after": {"name": "forged"}}),
    )
    result = await verify(database)
    assert (result.first_bad_seq, result.fault, result.entries) == (5, Fault.EDITED, 4)
    assert result.head_seq == 4


async def test_an_entry_moved_to_another_models_history_is_found(database: Database) -> None:
    async with database.unit_of_work(Origin(actor="writer")) as uow:
        project = await projects.create_project(uow, name="fraud", description="")
        model = await models.register_model(uow, project_id=project.id, name="detector")
        await versions.create_model_version(uow, model_id=model.id)
    async with database.read() as session:
        filed = await session.scalar(
            select(JournalRow.seq).where(JournalRow.model_id == model.id).limit(1)
        )
    assert filed is not None and (await verify(database)).intact
    await tamper(database, update(JournalRow).where(JournalRow.seq == filed).values(model_id=99))
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (filed, Fault.EDITED)


async def test_an_edit_is_found_even_in_the_actor_or_time(database: Database) -> None:
    await journal_of(database, 4)
    await tamper(database, update(JournalRow).where(JournalRow.seq == 2).values(actor="someone"))
    assert (await verify(database)).first_bad_seq == 2
    await tamper(database, update(JournalRow).where(JournalRow.seq == 2).values(actor="writer-1"))
    assert (await verify(database)).intact
    await tamper(database, update(JournalRow).where(JournalRow.seq == 3).values(at=utcnow()))
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (3, Fault.EDITED)


ORIGIN = Origin(
    actor="token:ci",
    token_name="ci",
    auth_method="api-token",
    client_address="203.0.113.7",
    request_id="req-1",
)


async def origin_journal(database: Database) -> None:
    """Entries 1 and 2 without an origin (as before the journal kept one), 3 and 4 with one."""
    await journal_of(database, 2)
    async with database.unit_of_work(ORIGIN) as uow:
        for n in range(2):
            await projects.create_project(uow, name=f"from-ci-{n}", description=None)


async def test_entries_with_and_without_an_origin_chain_and_keep_it(database: Database) -> None:
    await origin_journal(database)
    async with database.read() as session:
        entries = list(await session.scalars(select(JournalRow).order_by(JournalRow.seq)))
    assert [(e.token_name, e.client_address, e.request_id) for e in entries] == [
        (None, None, None),
        (None, None, None),
        ("ci", "203.0.113.7", "req-1"),
        ("ci", "203.0.113.7", "req-1"),
    ]
    assert {e.auth_method for e in entries[2:]} == {"api-token"}
    assert (await verify(database)).intact


@pytest.mark.parametrize(
    ("column", "forged"),
    [
        ("client_address", "198.51.100.1"),
        ("client_address", None),
        ("token_name", "other"),
        ("auth_method", "bearer"),
        ("request_id", "req-2"),
    ],
)
async def test_an_edit_of_an_entrys_origin_is_found(
    database: Database, column: str, forged: str | None
) -> None:
    await origin_journal(database)
    await tamper(database, update(JournalRow).where(JournalRow.seq == 4).values({column: forged}))
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (4, Fault.EDITED)


async def test_an_origin_given_to_an_entry_written_without_one_is_found(
    database: Database,
) -> None:
    await origin_journal(database)
    await tamper(
        database, update(JournalRow).where(JournalRow.seq == 1).values(client_address="10.0.0.1")
    )
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (1, Fault.EDITED)


async def test_an_origin_is_cut_to_its_column_not_refused(database: Database) -> None:
    long = Origin(actor="a", client_address="x" * 500, request_id="r" * 300)
    assert long.client_address == "x" * ORIGIN_CHARS and long.request_id == "r" * ORIGIN_CHARS
    async with database.unit_of_work(long) as uow:
        await projects.create_project(uow, name="long", description=None)
    assert (await verify(database)).intact


async def test_an_edit_rehashed_breaks_the_next_link(database: Database) -> None:
    await journal_of(database, 6)
    async with database.read() as session:
        entry = await session.get_one(JournalRow, 3)
    forged = audit.entry_hash(
        seq=3,
        at=entry.at,
        actor="forger",
        action=entry.action,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        project_id=entry.project_id,
        changes=entry.changes,
        prev_hash=entry.prev_hash,
    )
    await tamper(
        database,
        update(JournalRow).where(JournalRow.seq == 3).values(actor="forger", hash=forged),
    )
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (4, Fault.MISSING)


async def test_an_entry_deleted_in_the_middle_is_found(database: Database) -> None:
    await journal_of(database, 8)
    await tamper(database, delete(JournalRow).where(JournalRow.seq == 5))
    result = await verify(database)
    assert (result.first_bad_seq, result.fault, result.head_seq) == (6, Fault.MISSING, 4)
    assert "entry 4" in (result.reason or "")


async def test_the_first_entry_deleted_is_found(database: Database) -> None:
    await journal_of(database, 3)
    await tamper(database, delete(JournalRow).where(JournalRow.seq == 1))
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (2, Fault.MISSING)


async def test_two_entries_swapped_are_found(database: Database) -> None:
    await journal_of(database, 8)
    # Exchange the sequence numbers of entries 4 and 5 (through a free number: seq is the key).
    await tamper(
        database,
        update(JournalRow).where(JournalRow.seq == 4).values(seq=-1),
        update(JournalRow).where(JournalRow.seq == 5).values(seq=4),
        update(JournalRow).where(JournalRow.seq == -1).values(seq=5),
    )
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (4, Fault.REORDERED)
    assert "entry 5" in (result.reason or "")


async def test_two_entries_contents_exchanged_are_found(database: Database) -> None:
    await journal_of(database, 6)
    async with database.read() as session:
        query = select(JournalRow.changes).where(JournalRow.seq.in_([2, 3]))
        a, b = await session.scalars(query.order_by(JournalRow.seq))
    await tamper(
        database,
        update(JournalRow).where(JournalRow.seq == 2).values(changes=b),
        update(JournalRow).where(JournalRow.seq == 3).values(changes=a),
    )
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (2, Fault.EDITED)


async def recorded_head(database: Database) -> tuple[int, str]:
    result = await verify(database)
    assert result.head_seq is not None and result.head_hash is not None
    return result.head_seq, result.head_hash


async def move_stored_head(database: Database) -> None:
    """What a thorough tamperer does too: point journal_head at the journal's last entry."""
    async with database.read() as session:
        last = (await session.scalars(select(JournalRow).order_by(JournalRow.seq.desc()))).first()
    assert last is not None
    await tamper(database, update(JournalHeadRow).values(seq=last.seq, hash=last.hash))


async def test_a_head_recorded_earlier_shows_a_tail_cut_off(database: Database) -> None:
    await journal_of(database, 6)
    recorded = await recorded_head(database)
    assert (await verify(database, head=recorded)).intact
    await journal_of(database, 2, prefix="later")  # the chain grows past the recorded head
    assert (await verify(database, head=recorded)).intact
    # The last three entries cut off: the head the appends keep in journal_head sees it…
    await tamper(database, delete(JournalRow).where(JournalRow.seq >= 6))
    result = await verify(database)
    assert (result.first_bad_seq, result.fault, result.entries) == (8, Fault.TRUNCATED, 5)
    # …and when the tamperer moves that row too, a head recorded elsewhere still does.
    await move_stored_head(database)
    assert (await verify(database)).intact
    result = await verify(database, head=recorded)
    assert (result.first_bad_seq, result.fault, result.entries) == (6, Fault.TRUNCATED, 5)


async def test_entries_deleted_from_the_end_break_the_next_append(database: Database) -> None:
    await journal_of(database, 5)
    await tamper(database, delete(JournalRow).where(JournalRow.seq >= 4))
    await journal_of(database, 1, prefix="after")
    result = await verify(database)
    # The new entry links to entry 5, the head recorded when it was written, which is gone.
    assert (result.fault, result.entries) == (Fault.MISSING, 3), result


async def test_an_entry_written_around_the_append_path_is_found(database: Database) -> None:
    await journal_of(database, 3)
    async with database.read() as session:
        last = (await session.scalars(select(JournalRow).order_by(JournalRow.seq.desc()))).first()
    assert last is not None
    values = {c.key: getattr(last, c.key) for c in JournalRow.__table__.columns}
    values.update(seq=last.seq + 1, actor="forger", prev_hash=last.hash)
    values["hash"] = audit.entry_hash(**{k: v for k, v in values.items() if k != "hash"})
    await tamper(database, insert(JournalRow).values(values))
    result = await verify(database)
    assert (result.first_bad_seq, result.fault) == (last.seq + 1, Fault.BAD_LINK), result


async def test_a_head_recorded_earlier_shows_a_chain_rehashed(database: Database) -> None:
    await journal_of(database, 6)
    recorded = await recorded_head(database)
    # Entry 2's actor forged, and every hash from there on recomputed by the forger.
    async with database.read() as session:
        entries = list(await session.scalars(select(JournalRow).order_by(JournalRow.seq)))
    prev = entries[0].hash
    forged = []
    for entry in entries[1:]:
        values = {c.key: getattr(entry, c.key) for c in JournalRow.__table__.columns}
        values["actor"] = "forger" if entry.seq == 2 else entry.actor
        values["prev_hash"] = prev
        values["hash"] = prev = audit.entry_hash(**{k: v for k, v in values.items() if k != "hash"})
        forged.append(values)
    await tamper(
        database, delete(JournalRow).where(JournalRow.seq > 1), insert(JournalRow).values(forged)
    )
    assert (await verify(database)).fault == Fault.REWRITTEN  # against journal_head
    await move_stored_head(database)
    assert (await verify(database)).intact
    result = await verify(database, head=recorded)
    assert (result.first_bad_seq, result.fault) == (6, Fault.REWRITTEN), result
    assert "has another hash now" in (result.reason or "")


async def test_gaps_in_the_sequence_are_not_tampering(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite hands out max(seq) + 1: its numbers have no gaps")
    await journal_of(database, 3)
    # A transaction that took numbers and rolled back leaves them unused.
    with pytest.raises(RuntimeError):
        async with database.unit_of_work(Origin(actor="rolled back")) as uow:
            await projects.create_project(uow, name="never", description=None)
            await audit.link(uow.session, uow.journal, database.dialect)
            raise RuntimeError("rolled back")
    await journal_of(database, 3, prefix="after")
    async with database.read() as session:
        seqs = list(await session.scalars(select(JournalRow.seq).order_by(JournalRow.seq)))
    assert seqs == [1, 2, 3, 5, 6, 7]
    result = await verify(database)
    assert result.intact and result.gaps == 1 and result.entries == 6


async def test_concurrent_writers_keep_one_chain(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite admits one writer at a time")

    async def mutation(n: int) -> None:
        async with database.unit_of_work(Origin(actor=f"writer-{n}")) as uow:
            for k in range(1 + n % 3):
                await projects.create_project(uow, name=f"c{n}-{k}", description=None)
            await asyncio.sleep(0.001 * (n % 5))  # hold the transaction open, overlapping others

    # Without the journal lock two of them read the same last entry: the fork fails to commit.
    await asyncio.gather(*(mutation(n) for n in range(20)))
    async with database.read() as session:
        count = await session.scalar(select(func.count()).select_from(JournalRow))
    assert count == sum(1 + n % 3 for n in range(20))
    result = await verify(database, batch=7)
    assert result.intact and result.entries == count, result


async def test_a_fork_cannot_commit(database: Database) -> None:
    # Were appends ever not serialised, two entries would name the same predecessor: refused.
    await journal_of(database, 2)
    async with database.read() as session:
        second = await session.get_one(JournalRow, 2)
    with pytest.raises(Exception, match=r"(?i)unique"):
        await tamper(
            database,
            text(
                "INSERT INTO journal (seq, at, actor, action, entity_type, entity_id, changes,"
                " prev_hash, hash) VALUES (9, :at, 'x', 'project.created', 'PROJECT', 1, '{}',"
                " :prev, :hash)"
            ).bindparams(
                bindparam("at", second.at, type_=UtcDateTime()),
                prev=second.prev_hash,
                hash="f" * 64,
            ),
        )


OLD_ENTRIES: list[tuple[str, str, int | None, dict[str, Any]]] = [
    ("2026-11-25T10:00:00.123456+00:00", "alice", None, {"before": {}, "after": {"name": "p"}}),
    ("2026-11-25T10:00:01+00:00", "bob", 1, {"before": {"x": 1.5}, "after": {"x": 1e300}}),
    ("2026-11-25T10:00:02.5+00:00", "çarol", 1, {"after": {"n": [1, 2.0, "é"]}, "before": {}}),
]


async def upgraded_catalog(url: str) -> None:
    """An older catalog with entries written before the chain, then brought to the newest."""
    database = Database(url)
    try:
        await migrate.upgrade(database, "20261125_0005")
        insert = text(
            "INSERT INTO journal (seq, at, actor, action, entity_type, entity_id, project_id,"
            " changes) VALUES (:seq, :at, :actor, 'project.created', 'PROJECT', 1, :project,"
            " :changes)"
        ).bindparams(bindparam("at", type_=UtcDateTime()), bindparam("changes", type_=Json))
        async with database.write_engine.begin() as connection:
            for n, (at, actor, project, changes) in enumerate(OLD_ENTRIES * 4, start=1):
                values = {"at": datetime.fromisoformat(at), "actor": actor, "project": project}
                # a gap in the numbers, as a rolled-back transaction leaves on PostgreSQL
                seq = n + (n > 5)
                await connection.execute(insert, {"seq": seq, "changes": changes} | values)
            if database.dialect == "postgresql":
                await connection.execute(
                    text("SELECT setval(pg_get_serial_sequence('journal', 'seq'), 13)")
                )
        await migrate.upgrade(database)
        result = await verify(database, batch=5)
        assert result.intact and result.entries == 12 and result.gaps == 1, result
        await journal_of(database, 3, prefix="new")  # new appends continue the chain
        result = await verify(database, batch=5)
        assert result.intact and result.entries == 15 and result.head_seq == 16, result
        async with database.read() as session:
            first = await session.get_one(JournalRow, 1)
        assert first.prev_hash == GENESIS and first.actor == "alice"
        # Down and up again: the same entries give the same chain.
        await migrate.downgrade(database, "20261125_0005")
        await migrate.upgrade(database)
        again = await verify(database)
        assert again.intact and again.head_hash == result.head_hash, again
    finally:
        await database.dispose()


async def test_the_migration_chains_entries_written_before_it_on_sqlite(tmp_path: Path) -> None:
    await upgraded_catalog(f"sqlite+aiosqlite:///{tmp_path}/older.db")


async def test_the_migration_chains_entries_written_before_it_on_postgres(postgres: Any) -> None:
    url = postgres.create_database("mlcatalog_chain_upgrade")
    try:
        await upgraded_catalog(url)
    finally:
        postgres.drop_database("mlcatalog_chain_upgrade")
