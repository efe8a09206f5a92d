"""The indexer: tails the journal from a stored checkpoint into a search backend.

Each batch of entries names the model versions it touched (a change to a model, a card, a
dataset's tags or a lineage edge touches the versions that embed them); their current documents
are loaded from the store and written with the batch's last sequence as external version, then
the checkpoint moves. A crash between the write and the checkpoint replays the batch, which the
versions make harmless. A lease on the checkpoint row keeps a second indexer from running at once.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mlcatalog.search.documents import Document, version_documents
from mlcatalog.search.request import SearchUnavailable
from mlcatalog.store.database import Database, UnitOfWork
from mlcatalog.store.rows import (
    DatasetVersionRow,
    JournalRow,
    LineageEdgeRow,
    ModelVersionRow,
    SearchCheckpointRow,
    utcnow,
)

LEASE = timedelta(seconds=30)
log = logging.getLogger("mlcatalog.indexer")


class Sink(Protocol):
    """Where documents go: a search backend's write side."""

    async def write(self, documents: dict[int, tuple[Document | None, int]]) -> int: ...


class LeaseHeld(Exception):
    """Another indexer holds the lease on this checkpoint."""


async def affected_versions(database: Database, entries: Iterable[JournalRow]) -> dict[int, int]:
    """The model versions whose documents these entries change, each with the sequence of the
    last entry that changed it: the document's external version, so a replay writes the same
    version again and OpenSearch keeps what it has."""
    versions: dict[int, int] = {}
    models: dict[int, int] = {}
    datasets: dict[int, int] = {}
    dataset_versions: dict[int, int] = {}

    def touch(found: dict[int, int], key: int, seq: int) -> None:
        found[key] = max(seq, found.get(key, 0))

    for entry in entries:
        kind, seq = entry.entity_type, entry.seq
        if kind == "ModelVersion":
            touch(versions, entry.entity_id, seq)
        elif kind == "Model":
            touch(models, entry.entity_id, seq)
            for version_id in entry.changes.get("before", {}).get("version_ids", []):
                touch(versions, version_id, seq)
        elif kind == "Dataset":
            touch(datasets, entry.entity_id, seq)
        elif kind == "DatasetVersion":
            touch(dataset_versions, entry.entity_id, seq)
        elif kind == "LineageEdge":
            downstream = entry.changes.get("after", {}).get("downstream", [])
            if downstream and downstream[0] == "ModelVersion":
                touch(versions, int(downstream[1]), seq)
    async with database.read() as session:
        if models:
            stmt = select(ModelVersionRow.id, ModelVersionRow.model_id).where(
                ModelVersionRow.model_id.in_(list(models))
            )
            for version_id, model_id in await session.execute(stmt):
                touch(versions, version_id, models[model_id])
        if datasets or dataset_versions:
            trained = (
                select(LineageEdgeRow.target_id, DatasetVersionRow.id, DatasetVersionRow.dataset_id)
                .join(DatasetVersionRow, DatasetVersionRow.id == LineageEdgeRow.source_id)
                .where(
                    LineageEdgeRow.kind == "TRAINED_ON",
                    LineageEdgeRow.source_type == "DatasetVersion",
                    or_(
                        DatasetVersionRow.id.in_(list(dataset_versions)),
                        DatasetVersionRow.dataset_id.in_(list(datasets)),
                    ),
                )
            )
            for version_id, dataset_version_id, dataset_id in await session.execute(trained):
                seq = max(dataset_versions.get(dataset_version_id, 0), datasets.get(dataset_id, 0))
                touch(versions, version_id, seq)
    return versions


async def ensure_checkpoint(uow: UnitOfWork, name: str) -> None:
    """Create the checkpoint row (at sequence 0) unless it exists."""
    insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    await uow.session.execute(
        insert(SearchCheckpointRow)
        .values(name=name, seq=0, owner=None, lease_until=None)
        .on_conflict_do_nothing(index_elements=["name"])
    )


class Indexer:
    def __init__(self, database: Database, sink: Sink, *, name: str, batch: int = 500) -> None:
        self.database = database
        self.sink = sink
        self.name = name
        self.batch = batch
        self.owner = uuid.uuid4().hex

    async def checkpoint(self) -> int:
        async with self.database.read() as session:
            seq = await session.scalar(
                select(SearchCheckpointRow.seq).where(SearchCheckpointRow.name == self.name)
            )
        return seq or 0

    async def _take_lease(self) -> int:
        """Hold the lease for LEASE from now (or fail with LeaseHeld); returns the checkpoint."""
        now = utcnow()
        async with self.database.unit_of_work(self.owner) as uow:
            await ensure_checkpoint(uow, self.name)
            taken = await uow.session.execute(
                update(SearchCheckpointRow)
                .where(
                    SearchCheckpointRow.name == self.name,
                    or_(
                        SearchCheckpointRow.owner.is_(None),
                        SearchCheckpointRow.owner == self.owner,
                        SearchCheckpointRow.lease_until < now,
                    ),
                )
                .values(owner=self.owner, lease_until=now + LEASE)
                .returning(SearchCheckpointRow.seq)
            )
            seq = taken.scalar()
        if seq is None:
            raise LeaseHeld(f"another indexer holds the lease on {self.name!r}")
        return seq

    async def _advance(self, seq: int) -> None:
        async with self.database.unit_of_work(self.owner) as uow:
            await uow.session.execute(
                update(SearchCheckpointRow)
                .where(
                    SearchCheckpointRow.name == self.name, SearchCheckpointRow.owner == self.owner
                )
                .values(seq=seq)
            )

    async def run_once(self) -> int:
        """Index one batch of new journal entries; returns how many entries it read."""
        checkpoint = await self._take_lease()
        async with self.database.read() as session:
            entries = list(
                await session.scalars(
                    select(JournalRow)
                    .where(JournalRow.seq > checkpoint)
                    .order_by(JournalRow.seq)
                    .limit(self.batch)
                )
            )
        if not entries:
            return 0
        await self.write_versions(await affected_versions(self.database, entries))
        await self._advance(entries[-1].seq)
        return len(entries)

    async def write_versions(self, versions: dict[int, int]) -> None:
        """Write the current documents of these versions (a missing one is a tombstone)."""
        async with self.database.read() as session:
            documents = await version_documents(session, versions)
        await self.sink.write({v: (documents.get(v), seq) for v, seq in versions.items()})

    async def catch_up(self) -> int:
        """Index until the journal is exhausted, then release the lease; returns entries read."""
        total = 0
        try:
            while read := await self.run_once():
                total += read
        finally:
            await self.release()
        return total

    async def release(self) -> None:
        async with self.database.unit_of_work(self.owner) as uow:
            await uow.session.execute(
                update(SearchCheckpointRow)
                .where(
                    SearchCheckpointRow.name == self.name, SearchCheckpointRow.owner == self.owner
                )
                .values(owner=None, lease_until=None)
            )


async def run_forever(indexer: Indexer, *, poll_seconds: float, stop: asyncio.Event) -> None:
    """Keep the index caught up until ``stop`` is set. While the engine is down the journal
    simply grows; the mirror catches up when it returns."""
    delay = poll_seconds
    while not stop.is_set():
        try:
            read = await indexer.run_once()
            delay = poll_seconds if read == 0 else 0
        except LeaseHeld:
            delay = LEASE.total_seconds() / 3
        except SearchUnavailable as error:
            log.warning("search index not updated, retrying: %s", error)
            delay = min(max(delay * 2, poll_seconds), 30.0)
        except Exception:  # a bug or a lost database must not stop indexing for good
            log.exception("indexing failed, retrying")
            delay = min(max(delay * 2, poll_seconds), 30.0)
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    with contextlib.suppress(Exception):
        await indexer.release()
