"""Appends journal entries: written with the change, in the same transaction (see UnitOfWork)."""

from datetime import datetime
from typing import Any

from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import JournalRow, utcnow


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def record(
    uow: UnitOfWork,
    *,
    action: str,
    entity_type: str,
    entity_id: int,
    project_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Journal one change; ``before``/``after`` hold only the fields that changed."""
    uow.journal.append(
        JournalRow(
            at=utcnow(),
            actor=uow.actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            project_id=project_id,
            changes={
                "before": {k: _plain(v) for k, v in (before or {}).items()},
                "after": {k: _plain(v) for k, v in (after or {}).items()},
            },
        )
    )


def diff(row: Any, updates: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply ``updates`` to ``row``; return the before and after of the fields that changed."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in updates.items():
        old = getattr(row, key)
        if old != value:
            before[key], after[key] = old, value
            setattr(row, key, value)
    return before, after
