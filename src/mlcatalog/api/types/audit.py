"""The journal as an audit log: who changed what, and when."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.store import journal
from mlcatalog.store.journal import Action, EntityType
from mlcatalog.store.rows import JournalRow


@strawberry.type(description="One change, as it was committed.")
class JournalEntry:
    sequence: float = strawberry.field(
        description="Position in the journal (Float: can exceed 32 bits)."
    )
    at: datetime
    actor: str
    action: str = strawberry.field(
        description="entity.past_tense_verb, one of: " + ", ".join(Action),
    )
    entity_type: str = strawberry.field(description="One of: " + ", ".join(EntityType))
    entity_id: relay.GlobalID = strawberry.field(description="The entity's id (it may be deleted).")
    before: JSON | None = strawberry.field(
        description="The changed fields' values before; a delete lists what went with the"
        " entity (ids and counts). Each action has one shape."
    )
    after: JSON | None = strawberry.field(
        description="The changed fields' values after; large content (a card, run parameters)"
        " as its sha256 and size. Each action has one shape."
    )

    project_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: JournalRow) -> Self:
        changes = journal.changes(row)
        return cls(
            project_id=row.project_id,
            sequence=float(row.seq),
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=relay.GlobalID(row.entity_type, str(row.entity_id)),
            before=JSON(changes["before"]),
            after=JSON(changes["after"]),
        )


@strawberry.type(description="The caller.")
class Me:
    name: str
