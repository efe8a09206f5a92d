"""The journal's hash chain: how an entry's hash is computed, how appends link to the chain, and
how the chain is verified (``mlcatalog audit verify``).

Each entry holds ``prev_hash``, the hash of the entry before it (``GENESIS`` for the first), and
``hash``, SHA-256 over a canonical encoding of its seq, time, actor, action, entity type and id,
project, changes, origin (token name, authentication method, client address, request id) and
``prev_hash``. Editing an entry breaks its own hash; deleting or reordering entries breaks a
link, since the entry after the change no longer names its predecessor's hash.
"""

import enum
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mlcatalog.store.rows import JournalHeadRow, JournalRow, utcnow

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""

_VERSION = "mlcatalog-journal-v1"
"""Leads every encoding, so that schemes are told apart: v1 has no origin."""

_VERSION_ORIGIN = "mlcatalog-journal-v2"
_VERSION_MODEL = "mlcatalog-journal-v3"
"""v2 plus the model an entry is filed under (``model_id``, from migration 20261129_0011): a
version's stage, alias and deployment entries. Moving an entry to another model's history
changes its hash."""
"""v1 plus the origin: an entry with any origin detail. Entries written before the origin
columns have none, and keep their v1 hashes; setting a detail on such an entry changes its
encoding to v2, so the edit is found like any other."""


def _number(value: int | float) -> str:
    """A number as one canonical JSON spelling, exact, however the database returns it.

    PostgreSQL's JSONB keeps numbers as ``numeric`` and gives back ``1e300`` as a 301-digit
    integer, so neither ``repr`` nor int/float can be trusted to survive the round trip: the
    value's decimal digits without trailing zeros, and an exponent, can."""
    sign, digits, exponent = Decimal(value if isinstance(value, int) else repr(value)).as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"a journal entry cannot hold {value!r}")  # NaN, infinities
    spelled = "".join(map(str, digits)).lstrip("0")
    if not spelled:
        return "0"
    stripped = spelled.rstrip("0")
    exponent += len(spelled) - len(stripped)
    return ("-" if sign else "") + stripped + (f"e{exponent}" if exponent else "")


def canonical(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8, numbers as ``_number``."""
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(((str(key), item) for key, item in value.items()), key=lambda kv: kv[0])
        pairs = (f"{json.dumps(key, ensure_ascii=False)}:{canonical(item)}" for key, item in items)
        return "{" + ",".join(pairs) + "}"
    raise TypeError(f"a journal entry cannot hold a {type(value).__name__}")


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int,
    project_id: int | None,
    changes: Any,
    prev_hash: str,
    token_name: str | None = None,
    auth_method: str | None = None,
    client_address: str | None = None,
    request_id: str | None = None,
    model_id: int | None = None,
) -> str:
    """The SHA-256 (hex) of one entry's canonical encoding, its predecessor's hash included."""
    content = [seq, _time(at), actor, action, entity_type, entity_id, project_id, changes]
    origin = [token_name, auth_method, client_address, request_id]
    if model_id is not None:
        encoded = canonical([_VERSION_MODEL, *content, *origin, model_id, prev_hash])
    elif any(detail is not None for detail in origin):
        encoded = canonical([_VERSION_ORIGIN, *content, *origin, prev_hash])
    else:
        encoded = canonical([_VERSION, *content, prev_hash])
    return hashlib.sha256(encoded.encode()).hexdigest()


def _hash_of(row: Any, prev_hash: str, changes: Any) -> str:
    return entry_hash(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        project_id=row.project_id,
        changes=changes,
        prev_hash=prev_hash,
        token_name=row.token_name,
        auth_method=row.auth_method,
        client_address=row.client_address,
        request_id=row.request_id,
        model_id=row.model_id,
    )


async def link(session: AsyncSession, entries: Sequence[JournalRow], dialect: str) -> None:
    """Number ``entries`` and chain them to the journal's last entry: one small query.

    Call it where appends are serialised (on PostgreSQL after the journal advisory lock, see
    ``Database.unit_of_work``; on SQLite the write transaction is the only writer), so the last
    committed entry is the predecessor and no other transaction can take it as its own."""
    # The predecessor is the recorded head (journal_head), not whatever entry is last now: were
    # entries deleted from the end, the next append names a hash no entry has, and verify says
    # so. Without a head row yet (a fresh journal), the last entry, if any.
    if dialect == "postgresql":
        # The numbers come from the column's sequence, as they would on insert; the subqueries
        # run once. Under the lock no other appender is between this read and the commit.
        result = await session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('journal', 'seq')) AS seq,"
                " COALESCE((SELECT hash FROM journal_head WHERE id = 1),"
                " (SELECT hash FROM journal ORDER BY seq DESC LIMIT 1)) AS prev"
                " FROM generate_series(1, :n)"
            ),
            {"n": len(entries)},
        )
        rows = result.all()
        seqs = sorted(row.seq for row in rows)
        prev = rows[0].prev
    else:
        # SQLite would give a new row max(seq) + 1; after the head, so a number is never reused.
        head = (await session.execute(select(JournalHeadRow.seq, JournalHeadRow.hash))).first()
        if head is None:
            head = (
                await session.execute(
                    select(JournalRow.seq, JournalRow.hash).order_by(JournalRow.seq.desc()).limit(1)
                )
            ).first()
        start = head.seq + 1 if head else 1
        seqs = list(range(start, start + len(entries)))
        prev = head.hash if head else None
    prev_hash: str = prev or GENESIS
    for seq, entry in zip(seqs, entries, strict=True):
        entry.seq = seq
        # What the column defaults would fill in on insert, filled in now: the hash covers them.
        # Stamped here, under the lock, so times never run backwards against sequence numbers.
        entry.at = utcnow()
        entry.changes = entry.changes if entry.changes is not None else {}
        entry.prev_hash = prev_hash
        # Hash what the database will give back: the changes after a JSON round trip.
        changes = json.loads(json.dumps(entry.changes))
        entry.hash = prev_hash = _hash_of(entry, prev_hash, changes)
    upsert = (pg_insert if dialect == "postgresql" else sqlite_insert)(JournalHeadRow)
    await session.execute(
        upsert.values(id=1, seq=seqs[-1], hash=prev_hash).on_conflict_do_update(
            index_elements=[JournalHeadRow.id], set_={"seq": seqs[-1], "hash": prev_hash}
        )
    )


async def stored_head(session: AsyncSession) -> tuple[int, str] | None:
    """The head the appends recorded (seq, hash), if any."""
    head = (await session.execute(select(JournalHeadRow.seq, JournalHeadRow.hash))).first()
    return (head.seq, head.hash) if head else None


class Fault(enum.StrEnum):
    """Why an entry breaks the chain."""

    EDITED = "edited"
    """Its content no longer gives its hash."""
    MISSING = "missing"
    """It names a predecessor no entry has as its hash: entries before it were deleted."""
    REORDERED = "reordered"
    """It names as its predecessor an entry that comes after it."""
    BAD_LINK = "bad link"
    """It names an earlier entry, not the one just before it (entries were inserted or moved)."""
    TRUNCATED = "truncated"
    """The head recorded earlier is gone and the chain ends before it: its end was cut off."""
    REWRITTEN = "rewritten"
    """The entry recorded earlier as the head has another hash now: the chain was rehashed."""


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: how much of the chain holds, and the first entry that breaks it."""

    entries: int
    """Entries checked (all of them when the chain is intact; up to the first bad one if not)."""
    head_seq: int | None
    head_hash: str | None
    """The last good entry: record it elsewhere to notice a truncated tail (see ``verify``)."""
    gaps: int
    """Missing sequence numbers between linked entries: rolled-back transactions, not faults."""
    first_bad_seq: int | None = None
    fault: Fault | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.fault is None


_COLUMNS = (
    JournalRow.seq,
    JournalRow.at,
    JournalRow.actor,
    JournalRow.action,
    JournalRow.entity_type,
    JournalRow.entity_id,
    JournalRow.project_id,
    JournalRow.changes,
    JournalRow.token_name,
    JournalRow.auth_method,
    JournalRow.client_address,
    JournalRow.request_id,
    JournalRow.model_id,
    JournalRow.prev_hash,
    JournalRow.hash,
)


async def verify(
    session: AsyncSession, *, batch: int = 1000, head: tuple[int, str] | None = None
) -> Verification:
    """Walk the journal in sequence order, ``batch`` entries at a time, recomputing every hash
    and link; stop at the first entry that breaks the chain.

    Sequence numbers are not required to be contiguous: PostgreSQL's sequences skip the numbers
    of rolled-back transactions, so a gap in seq proves nothing. Order and completeness are proved
    by the links instead: each entry's ``prev_hash`` must be the hash of the entry just before it
    (``GENESIS`` for the first), and no one can delete, insert or reorder entries without breaking
    a link unless they rehash every entry after the change. What a chain cannot show alone is
    entries cut from its end, or the whole chain rehashed: ``head``, the seq and hash of a head
    reported earlier and kept elsewhere, must then still be in the chain. Without one, the head
    the appends recorded in journal_head is checked the same way, which catches entries deleted
    from the end by someone who did not also rewrite that row."""
    recorded_by_appends = head is None
    if head is None:
        head = await stored_head(session)
    checked = gaps = 0
    recorded: str | None = None  # the hash now at the recorded head's seq
    beyond: int | None = None  # the first entry after the recorded head
    prev_seq: int | None = None
    prev_hash = GENESIS
    while True:
        query = select(*_COLUMNS).order_by(JournalRow.seq).limit(batch)
        if prev_seq is not None:
            query = query.where(JournalRow.seq > prev_seq)
        rows = (await session.execute(query)).all()
        for row in rows:
            fault = None
            if row.prev_hash != prev_hash:
                fault, reason = await _diagnose(session, row, prev_seq)
            elif _hash_of(row, row.prev_hash, row.changes) != row.hash:
                fault, reason = Fault.EDITED, "its content does not give its hash"
            if fault is not None:
                last = prev_hash if prev_seq is not None else None
                return Verification(checked, prev_seq, last, gaps, row.seq, fault, reason)
            if prev_seq is not None and row.seq != prev_seq + 1:
                gaps += 1
            checked += 1
            prev_seq, prev_hash = row.seq, row.hash
            if head is not None and row.seq == head[0]:
                recorded = row.hash
            if head is not None and row.seq > head[0] and beyond is None:
                beyond = row.seq
        if len(rows) < batch:
            last = prev_hash if prev_seq is not None else None
            if head is not None and recorded != head[1]:
                fault, reason = _lost_head(head, recorded, prev_seq)
                return Verification(checked, prev_seq, last, gaps, head[0], fault, reason)
            if recorded_by_appends and head is not None and prev_seq != head[0]:
                # Every append moves the recorded head: entries beyond it were written around
                # the journal's own append path.
                reason = f"it follows entry {head[0]}, the head the appends recorded"
                return Verification(checked, prev_seq, last, gaps, beyond, Fault.BAD_LINK, reason)
            return Verification(checked, prev_seq, last, gaps)


def _lost_head(head: tuple[int, str], found: str | None, last: int | None) -> tuple[Fault, str]:
    """Why the head recorded earlier is not in a chain that is otherwise intact."""
    seq, _ = head
    if found is None and (last is None or last < seq):
        ends = "the journal is empty" if last is None else f"the chain ends at entry {last}"
        return Fault.TRUNCATED, f"{ends}, before entry {seq}, the head recorded"
    if found is None:
        return Fault.REWRITTEN, f"entry {seq}, the head recorded, is no longer in the chain"
    return Fault.REWRITTEN, f"entry {seq}, the head recorded, has another hash now"


async def _diagnose(session: AsyncSession, row: Any, prev_seq: int | None) -> tuple[Fault, str]:
    """Why ``row`` does not link to the entry before it (one query, run only on a fault)."""
    before = f"entry {prev_seq}" if prev_seq is not None else "the start of the journal"
    if row.prev_hash == GENESIS:
        return Fault.BAD_LINK, f"it claims to be the first entry, yet follows {before}"
    named = await session.scalar(select(JournalRow.seq).where(JournalRow.hash == row.prev_hash))
    if named is None:
        return (
            Fault.MISSING,
            f"it follows an entry that is not in the journal: entries between {before} and it"
            " were deleted (or their hashes rewritten)",
        )
    if named > row.seq:
        return Fault.REORDERED, f"it follows entry {named}, which comes after it"
    return Fault.BAD_LINK, f"it follows entry {named}, not {before}"
