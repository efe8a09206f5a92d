"""The indexer: tails the journal from a stored checkpoint into a search backend.

Each batch of entries names the documents it touched (a change to a model, a card, a dataset's
tags or a lineage edge touches the documents that embed them); their current documents
are loaded from the store and written with the batch's last sequence as external version, then
the checkpoint moves. A crash between the write and the checkpoint replays the batch, which the
versions make harmless. A lease on the checkpoint row keeps a second indexer from running at once.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from mlcatalog.search.documents import Document, Key, load_documents
from mlcatalog.search.request import EntityType, SearchUnavailable
from mlcatalog.store import journal
from mlcatalog.store.database import Database, Origin, UnitOfWork
from mlcatalog.store.journal import Action, EdgeKind, LineageRemoved, expand_ids
from mlcatalog.store.journal import EntityType as Kind
from mlcatalog.store.rows import (
    DatasetVersionRow,
    JournalRow,
    LineageEdgeRow,
    ModelVersionRow,
    RunRow,
    SearchCheckpointRow,
    utcnow,
)

LEASE = timedelta(seconds=30)
# The journal's entity types that have documents of their own.
TYPES = {
    Kind.MODEL: EntityType.MODEL,
    Kind.MODEL_VERSION: EntityType.MODEL_VERSION,
    Kind.DATASET: EntityType.DATASET,
    Kind.EXPERIMENT: EntityType.EXPERIMENT,
    Kind.RUN: EntityType.RUN,
}
# Whose documents embed their lineage inputs: a version what it was trained on, a run its data.
EMBEDDED_INPUTS = (EdgeKind.TRAINED_ON, EdgeKind.USED_BY)
log = logging.getLogger("mlcatalog.indexer")


class Sink(Protocol):
    """Where documents go: a search backend's write side."""

    async def write(self, documents: dict[Key, tuple[Document | None, int]]) -> int: ...


class LeaseHeld(Exception):
    """Another indexer holds the lease on this checkpoint."""


async def affected(database: Database, entries: Iterable[JournalRow]) -> dict[Key, int]:
    """The documents these entries change, each with the sequence of the last entry that
    changed it: the document's external version, so a replay writes the same version again and
    OpenSearch keeps what it has. A document changes with what it embeds: a version with its
    model, tags, card and training data; a model with its versions' stages and frameworks; a
    dataset with its versions; a run with its input data."""
    found: dict[Key, int] = {}
    # What the entries name directly, by type; parents and children are looked up below.
    named: dict[Kind, dict[int, int]] = defaultdict(dict)

    def touch(key: Key, seq: int) -> None:
        found[key] = max(seq, found.get(key, 0))

    def name(kind: Kind, entity_id: int, seq: int) -> None:
        named[kind][entity_id] = max(seq, named[kind].get(entity_id, 0))
        if kind in TYPES:
            touch((TYPES[kind], entity_id), seq)

    def unlinked(lineage: LineageRemoved, seq: int) -> None:
        # What came from deleted rows lost an input its document may embed.
        for kind, ids in lineage["downstream"].items():
            for entity_id in expand_ids(ids):
                name(Kind(kind), entity_id, seq)

    for entry in entries:
        seq = entry.seq
        if entry.action == Action.LINEAGE_LINKED:
            downstream_type, downstream_id = journal.after(entry, journal.LineageLinked)[
                "downstream"
            ]
            name(Kind(downstream_type), downstream_id, seq)
            continue
        name(Kind(entry.entity_type), entry.entity_id, seq)
        # Deleted rows can no longer be looked up: their entries name what went with them.
        if entry.action == Action.MODEL_DELETED:
            model = journal.before(entry, journal.ModelDeleted)
            for version_id in expand_ids(model["versions"]["ids"]):
                touch((EntityType.MODEL_VERSION, version_id), seq)
            unlinked(model["lineage"], seq)
        elif entry.action == Action.MODEL_VERSION_DELETED:
            version = journal.before(entry, journal.ModelVersionDeleted)
            touch((EntityType.MODEL, version["model_id"]), seq)
            unlinked(version["lineage"], seq)

    versions, models = named[Kind.MODEL_VERSION], named[Kind.MODEL]
    datasets, dataset_versions = named[Kind.DATASET], named[Kind.DATASET_VERSION]
    experiments = named[Kind.EXPERIMENT]
    async with database.read() as session:
        if versions or models:
            stmt = select(ModelVersionRow.id, ModelVersionRow.model_id).where(
                or_(
                    ModelVersionRow.id.in_(list(versions)),
                    ModelVersionRow.model_id.in_(list(models)),
                )
            )
            for version_id, model_id in await session.execute(stmt):
                if model_id in models:
                    touch((EntityType.MODEL_VERSION, version_id), models[model_id])
                if version_id in versions:
                    touch((EntityType.MODEL, model_id), versions[version_id])
        if experiments:
            stmt = select(RunRow.id, RunRow.experiment_id).where(
                RunRow.experiment_id.in_(list(experiments))
            )
            for run_id, experiment_id in await session.execute(stmt):
                touch((EntityType.RUN, run_id), experiments[experiment_id])
        if datasets or dataset_versions:
            stmt = select(DatasetVersionRow.id, DatasetVersionRow.dataset_id).where(
                or_(
                    DatasetVersionRow.id.in_(list(dataset_versions)),
                    DatasetVersionRow.dataset_id.in_(list(datasets)),
                )
            )
            # Per dataset version, the sequence that changed it or its dataset.
            changed: dict[int, int] = {}
            for dataset_version_id, dataset_id in await session.execute(stmt):
                seq = max(dataset_versions.get(dataset_version_id, 0), datasets.get(dataset_id, 0))
                changed[dataset_version_id] = seq
                if dataset_version_id in dataset_versions:
                    touch((EntityType.DATASET, dataset_id), seq)
            consumers = select(
                LineageEdgeRow.target_type, LineageEdgeRow.target_id, LineageEdgeRow.source_id
            ).where(
                LineageEdgeRow.kind.in_(EMBEDDED_INPUTS),
                LineageEdgeRow.source_type == Kind.DATASET_VERSION,
                LineageEdgeRow.source_id.in_(list(changed)),
            )
            for target_type, target_id, dataset_version_id in await session.execute(consumers):
                touch((TYPES[Kind(target_type)], target_id), changed[dataset_version_id])
    return found


async def lag(database: Database, name: str) -> int | None:
    """How far checkpoint ``name`` is behind the journal's head, in sequence numbers: the
    entries still to index (on PostgreSQL, numbers lost to rolled-back transactions count too).
    Two index lookups, cheap enough for every scrape, and right whichever process indexes.
    None while the database cannot be reached (/readyz tells that)."""
    try:
        async with database.read() as session:
            head = await session.scalar(select(func.max(JournalRow.seq)))
            done = await session.scalar(
                select(SearchCheckpointRow.seq).where(SearchCheckpointRow.name == name)
            )
    except (SQLAlchemyError, OSError):
        return None
    return max((head or 0) - (done or 0), 0)


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
        async with self.database.unit_of_work(Origin(actor=self.owner)) as uow:
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
        async with self.database.unit_of_work(Origin(actor=self.owner)) as uow:
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
        await self.write_documents(await affected(self.database, entries))
        await self._advance(entries[-1].seq)
        return len(entries)

    async def write_documents(self, keys: dict[Key, int]) -> None:
        """Write the current documents of these entities (a missing one is a tombstone)."""
        async with self.database.read() as session:
            documents = await load_documents(session, keys)
        await self.sink.write({key: (documents.get(key), seq) for key, seq in keys.items()})

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
        async with self.database.unit_of_work(Origin(actor=self.owner)) as uow:
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
