"""The lifecycle's history, read from the journal (never from tables that can drift): which
version held a stage or an alias at a moment, and the promotion a rollback undoes.

Entries about a model's versions are filed under the model (``journal.model_id``, indexed with
seq), so these reads walk one model's entries newest first, in batches, and stop at the answer.
"""

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mlcatalog.store.journal import (
    Action,
    AliasPointer,
    EntityType,
    LineageLinked,
    ModelVersionCreated,
    ModelVersionDeleted,
    StageEntered,
    StageFields,
    after,
    before,
)
from mlcatalog.store.rows import JournalRow, LineageEdgeRow

STAGE_ACTIONS = (
    Action.MODEL_VERSION_CREATED,
    Action.MODEL_VERSION_STAGE_CHANGED,
    Action.MODEL_VERSION_DELETED,
)
ALIAS_ACTIONS = (Action.ALIAS_SET, Action.ALIAS_MOVED, Action.ALIAS_REMOVED)
BATCH = 500

PRODUCTION, ARCHIVED = "PRODUCTION", "ARCHIVED"


def stage_entered(entry: JournalRow) -> str | None:
    """The stage an entry of STAGE_ACTIONS leaves its version in (None: deleted)."""
    if entry.action == Action.MODEL_VERSION_STAGE_CHANGED:
        return after(entry, StageEntered)["stage"]
    if entry.action == Action.MODEL_VERSION_CREATED:
        return after(entry, ModelVersionCreated)["stage"]
    return None


def stage_left(entry: JournalRow) -> str | None:
    """The stage an entry of STAGE_ACTIONS takes its version out of (None: created)."""
    if entry.action == Action.MODEL_VERSION_STAGE_CHANGED:
        return before(entry, StageFields)["stage"]
    if entry.action == Action.MODEL_VERSION_DELETED:
        return before(entry, ModelVersionDeleted)["stage"]
    return None


async def _newest_first(
    session: AsyncSession, stmt: Select[JournalRow]
) -> AsyncIterator[JournalRow]:
    below: int | None = None
    while True:
        page = stmt if below is None else stmt.where(JournalRow.seq < below)
        rows = list(await session.scalars(page.order_by(JournalRow.seq.desc()).limit(BATCH)))
        for row in rows:
            yield row
        if len(rows) < BATCH:
            return
        below = rows[-1].seq


async def _chain(
    first: Iterable[JournalRow], then: AsyncIterator[JournalRow]
) -> AsyncIterator[JournalRow]:
    for entry in first:
        yield entry
    async for entry in then:
        yield entry


def _of_model(model_id: int, actions: Iterable[Action], at: datetime | None) -> Select[JournalRow]:
    stmt = select(JournalRow).where(
        JournalRow.model_id == model_id, JournalRow.action.in_(list(actions))
    )
    return stmt if at is None else stmt.where(JournalRow.at <= at)


async def holder_at(
    session: AsyncSession, model_id: int, at: datetime, stage: str = PRODUCTION
) -> JournalRow | None:
    """The entry that put the model's version holding ``stage`` at ``at`` there: of the versions
    whose latest entry by then left them in ``stage``, the one moved there last."""
    seen: set[int] = set()
    async for entry in _newest_first(session, _of_model(model_id, STAGE_ACTIONS, at)):
        if entry.entity_id in seen:
            continue
        seen.add(entry.entity_id)
        if stage_entered(entry) == stage:
            return entry
    return None


async def alias_at(
    session: AsyncSession, model_id: int, name: str, at: datetime
) -> JournalRow | None:
    """The entry that pointed alias ``name`` at its version as of ``at`` (None: it had none)."""
    async for entry in _newest_first(session, _of_model(model_id, ALIAS_ACTIONS, at)):
        if entry.action == Action.ALIAS_REMOVED:
            if before(entry, AliasPointer)["alias"] == name:
                return None
        elif after(entry, AliasPointer)["alias"] == name:
            return entry
    return None


@dataclass(frozen=True)
class Promotion:
    version_id: int
    archived: list[int]  # the versions the promotion archived
    entry: JournalRow


async def latest_promotion(
    session: AsyncSession, version_ids: Iterable[int], pending: Sequence[JournalRow] = ()
) -> Promotion | None:
    """Of these versions, the one that entered PRODUCTION last, and what its move archived;
    ``pending``: the entries a unit of work holds back until its commit, newer than any."""
    ids = set(version_ids)
    stmt = select(JournalRow).where(
        JournalRow.entity_type == EntityType.MODEL_VERSION,
        JournalRow.entity_id.in_(ids),
        JournalRow.action.in_((Action.MODEL_VERSION_CREATED, Action.MODEL_VERSION_STAGE_CHANGED)),
    )
    held = [e for e in reversed(pending) if e.entity_type == EntityType.MODEL_VERSION]
    async for entry in _chain(held, _newest_first(session, stmt)):
        if entry.entity_id not in ids or stage_entered(entry) != PRODUCTION:
            continue
        archived = []
        if entry.action == Action.MODEL_VERSION_STAGE_CHANGED:
            archived = after(entry, StageEntered).get("archived", [])
        return Promotion(version_id=entry.entity_id, archived=archived, entry=entry)
    return None


def _place(entry: JournalRow, pending: Sequence[JournalRow]) -> tuple[int, int]:
    """Where an entry stands in the journal: committed ones by seq, then the pending ones."""
    if entry.seq is not None:
        return (0, entry.seq)
    return (1, next(i for i, e in enumerate(pending) if e is entry))


async def unchanged_since_replaced(
    session: AsyncSession,
    promotion: Promotion,
    version_id: int,
    pending: Sequence[JournalRow] = (),
) -> bool:
    """Whether the version ``promotion`` archived is as it left PRODUCTION: the journal's latest
    entry about it is the archiving that promotion made (right after the promotion's entry, in
    its commit), and no lineage edge was linked to it since. ``pending``: as latest_promotion."""
    about = (EntityType.MODEL_VERSION, version_id)
    last = next((e for e in reversed(pending) if (e.entity_type, e.entity_id) == about), None)
    if last is None:
        last = await session.scalar(
            select(JournalRow)
            .where(JournalRow.entity_type == about[0], JournalRow.entity_id == about[1])
            .order_by(JournalRow.seq.desc())
            .limit(1)
        )
    if last is None or last.action != Action.MODEL_VERSION_STAGE_CHANGED:
        return False
    (group, at), (promoted_group, promoted_at) = (
        _place(last, pending),
        _place(promotion.entry, pending),
    )
    if (
        group != promoted_group
        or not promoted_at < at <= promoted_at + len(promotion.archived)
        or (stage_left(last), stage_entered(last)) != (PRODUCTION, ARCHIVED)
    ):
        return False
    if any(
        e.action == Action.LINEAGE_LINKED
        and about in {tuple(after(e, LineageLinked)[end]) for end in ("upstream", "downstream")}
        and _place(e, pending) > (group, at)
        for e in pending
    ):
        return False
    if group == 1:  # every committed entry is older than a pending one
        return True
    edges = select(LineageEdgeRow.id).where(
        or_(
            and_(LineageEdgeRow.source_type == about[0], LineageEdgeRow.source_id == about[1]),
            and_(LineageEdgeRow.target_type == about[0], LineageEdgeRow.target_id == about[1]),
        )
    )
    linked = await session.scalar(
        select(JournalRow.seq)
        .where(
            JournalRow.action == Action.LINEAGE_LINKED,
            JournalRow.entity_id.in_(edges),
            JournalRow.seq > at,
        )
        .limit(1)
    )
    return linked is None
