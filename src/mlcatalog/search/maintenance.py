"""Rebuilding a search index from the store, and checking it against the store."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, update

from mlcatalog.search.backend import SearchBackend
from mlcatalog.search.documents import Key, all_keys, load_documents
from mlcatalog.search.indexer import ensure_checkpoint
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import JournalRow, SearchCheckpointRow

BATCH = 1000


async def _keys(database: Database) -> list[Key]:
    async with database.read() as session:
        return await all_keys(session)


async def _journal_head(database: Database) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.max(JournalRow.seq))) or 0)


async def reindex(
    database: Database,
    backend: SearchBackend,
    *,
    name: str,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Rebuild the index from the store and make it live in one step; returns the documents.

    Every document is written at the journal's head as read before the rebuild; the checkpoint
    then moves back to that head, so changes committed during the rebuild are replayed into it.
    """
    head = await _journal_head(database)
    keys = await _keys(database)
    target = await backend.start_rebuild()
    written = 0
    # The engine indexes one batch while the next is loaded from the store: the two work on
    # different cores (the database and Python here, OpenSearch's JVM there).
    writing: asyncio.Task[int] | None = None
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        async with database.read() as session:
            documents = await load_documents(session, batch)
        if writing is not None:
            await writing
        writing = asyncio.create_task(
            backend.write({key: (d, head) for key, d in documents.items()}, target)
        )
        written += len(documents)
        if progress:
            progress(min(start + BATCH, len(keys)), len(keys))
    if writing is not None:
        await writing
    await backend.finish_rebuild(target, head)
    async with database.unit_of_work(Origin(actor="indexer")) as uow:
        await ensure_checkpoint(uow, name)
        # Taking the lease away too: a live indexer that read past the head before the swap
        # (and wrote into the old index) must not move the checkpoint past the head again.
        await uow.session.execute(
            update(SearchCheckpointRow)
            .where(SearchCheckpointRow.name == name)
            .values(seq=head, owner=None, lease_until=None)
        )
    return written


@dataclass
class Drift:
    """What the index gets wrong compared to the store."""

    missing: list[Key] = field(default_factory=list)
    extra: list[Key] = field(default_factory=list)
    stale: list[Key] = field(default_factory=list)
    unread_entries: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.stale or self.unread_entries)


async def check(database: Database, backend: SearchBackend, *, name: str) -> Drift:
    """Compare every stored document with the one the store gives now."""
    await backend.refresh()
    drift = Drift()
    keys = await _keys(database)
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        async with database.read() as session:
            expected = await load_documents(session, batch)
        stored = await backend.stored_documents(batch)
        for key in batch:
            document = stored.get(key)
            if document is None:
                drift.missing.append(key)
            elif document != expected[key]:
                drift.stale.append(key)
    live = set(keys)
    stored_keys = await backend.stored_versions()
    leftovers = await backend.stored_documents([k for k in stored_keys if k not in live])
    drift.extra = sorted(k for k, document in leftovers.items() if document is not None)
    async with database.read() as session:
        checkpoint = await session.scalar(
            select(SearchCheckpointRow.seq).where(SearchCheckpointRow.name == name)
        )
        drift.unread_entries = int(
            await session.scalar(
                select(func.count())
                .select_from(JournalRow)
                .where(JournalRow.seq > (checkpoint or 0))
            )
            or 0
        )
    return drift
