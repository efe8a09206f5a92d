"""Rebuilding a search index from the store, and checking it against the store."""

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, update

from mlcatalog.search.backend import SearchBackend
from mlcatalog.search.documents import version_documents
from mlcatalog.search.indexer import ensure_checkpoint
from mlcatalog.store.database import Database
from mlcatalog.store.rows import JournalRow, ModelVersionRow, SearchCheckpointRow

BATCH = 1000


async def _version_ids(database: Database) -> list[int]:
    async with database.read() as session:
        return list(await session.scalars(select(ModelVersionRow.id).order_by(ModelVersionRow.id)))


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
    ids = await _version_ids(database)
    target = await backend.start_rebuild()
    written = 0
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        async with database.read() as session:
            documents = await version_documents(session, batch)
        await backend.write({i: (d, head) for i, d in documents.items()}, target)
        written += len(documents)
        if progress:
            progress(min(start + BATCH, len(ids)), len(ids))
    await backend.finish_rebuild(target, head)
    async with database.unit_of_work("indexer") as uow:
        await ensure_checkpoint(uow, name)
        await uow.session.execute(
            update(SearchCheckpointRow).where(SearchCheckpointRow.name == name).values(seq=head)
        )
    return written


@dataclass
class Drift:
    """What the index gets wrong compared to the store."""

    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    unread_entries: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.stale or self.unread_entries)


async def check(database: Database, backend: SearchBackend, *, name: str) -> Drift:
    """Compare every stored document with the one the store gives now."""
    await backend.refresh()
    drift = Drift()
    ids = await _version_ids(database)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        async with database.read() as session:
            expected = await version_documents(session, batch)
        stored = await backend.stored_documents(batch)
        for version_id in batch:
            document = stored.get(version_id)
            if document is None:
                drift.missing.append(version_id)
            elif document != expected[version_id]:
                drift.stale.append(version_id)
    live = set(ids)
    stored_ids = await backend.stored_versions()
    leftovers = await backend.stored_documents([i for i in stored_ids if i not in live])
    drift.extra = sorted(i for i, document in leftovers.items() if document is not None)
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
