"""Appends journal entries: written with the change, in the same transaction (see UnitOfWork)."""

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mlcatalog.store import journal
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, Content, EntityType
from mlcatalog.store.rows import JournalRow, utcnow


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def record(
    uow: UnitOfWork,
    action: Action,
    entity_id: int,
    *,
    project_id: int | None,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
    entity_type: EntityType | None = None,
) -> None:
    """Journal one change; ``before``/``after`` have the shapes store.journal.SHAPES declares
    for ``action`` (an entry that does not is refused: ShapeError). ``entity_type`` is needed
    only for the actions that apply to several types (tags, cards)."""
    if entity_type is None:
        (entity_type, *others) = journal.SHAPES[action].entity_types
        if others:
            raise journal.ShapeError(f"{action} applies to several entity types: name one")
    changes = journal.Changes(
        before={k: _plain(v) for k, v in (before or {}).items()},
        after={k: _plain(v) for k, v in (after or {}).items()},
    )
    journal.check(action, entity_type, changes)
    uow.journal.append(
        JournalRow(
            at=utcnow(),
            actor=uow.actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            project_id=project_id,
            changes=dict(changes),
        )
    )


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
