"""Appends journal entries, checked against their action's shape, to a unit of work: written with
the change, in the same transaction. catalog/ (through catalog/journal), auth/tokens and
auth/sessions use it."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mlcatalog.store import journal
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, EntityType
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
    only for the actions that apply to several types (tags, cards). The entry names the unit of
    work's origin: who acted, with which token and method, from which client and request."""
    if entity_type is None:
        (entity_type, *others) = journal.SHAPES[action].entity_types
        if others:
            raise journal.ShapeError(f"{action} applies to several entity types: name one")
    changes = journal.Changes(
        before={k: _plain(v) for k, v in (before or {}).items()},
        after={k: _plain(v) for k, v in (after or {}).items()},
    )
    journal.check(action, entity_type, changes)
    origin = uow.origin
    uow.journal.append(
        JournalRow(
            at=utcnow(),
            actor=origin.actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            project_id=project_id,
            changes=dict(changes),
            token_name=origin.token_name,
            auth_method=origin.auth_method,
            client_address=origin.client_address,
            request_id=origin.request_id,
        )
    )


def amend_after(entry: JournalRow, **fields: object) -> None:
    """Add ``fields`` to the after of an entry this unit of work holds back (not yet written):
    for a rule that learns what to add only once another rule journaled the change (an approval
    naming itself on the stage change that set_stage records). Checked against the shape again."""
    changes = journal.Changes(
        before=dict(entry.changes["before"]), after={**entry.changes["after"], **fields}
    )
    journal.check(entry.action, entry.entity_type, changes)
    entry.changes = dict(changes)
