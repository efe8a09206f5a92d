"""Journal entries for the rules: ``record`` (store/entries.py: written with the change, in the
same transaction), and what an entry keeps of a change (diff, bounded, digest)."""

import hashlib
import json
from typing import Any

from mlcatalog.store.database import Database, Origin
from mlcatalog.store.entries import record as record
from mlcatalog.store.journal import Action, Content, PolicyLoaded, WriteDenied


def diff(row: Any, updates: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply ``updates`` to ``row``; return the before and after of the fields that changed."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in updates.items():
        old = getattr(row, key)
        if old != value:
            before[key], after[key] = bounded(old), bounded(value)
            setattr(row, key, value)
    return before, after


# Values up to this many bytes of JSON are copied into an entry; larger ones (a long description,
# big hyperparameters, a long comment) are recorded by digest: entries and audit pages stay small.
INLINE_BYTES = 1024


def bounded(value: Any) -> Any:
    """``value`` itself when it is small, else its digest (``Content``)."""
    if isinstance(value, str | dict | list):
        data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(data) > INLINE_BYTES:
            return digest(value)
    return value


def digest(content: Any) -> Content:
    """The SHA-256 and size of ``content`` as canonical JSON (sorted keys, no spaces): what the
    journal keeps of content too large to copy, enough to prove which content it was."""
    data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return Content(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


async def record_denied(
    database: Database, origin: Origin, *, mutation: str, project_id: int | None, reason: str
) -> None:
    """Journal a write the policy refused, in a transaction of its own: the write rolled back."""
    async with database.unit_of_work(origin) as uow:
        after = WriteDenied(mutation=mutation, reason=reason[:500])
        record(uow, Action.WRITE_DENIED, project_id or 0, project_id=project_id, after=after)


async def record_policy(database: Database, origin: Origin, *, sha256: str, lines: int) -> None:
    async with database.unit_of_work(origin) as uow:
        after = PolicyLoaded(sha256=sha256, lines=lines)
        record(uow, Action.POLICY_RELOADED, 1, project_id=None, after=after)
