"""The journal as an audit log: who changed what, and when."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.auth.principal import Method
from mlcatalog.store import journal
from mlcatalog.store.journal import Action, EntityType
from mlcatalog.store.rows import JournalRow


@strawberry.type(description="One change, as it was committed.")
class JournalEntry:
    sequence: float = strawberry.field(
        description="Position in the journal (Float: can exceed 32 bits)."
    )
    at: datetime
    actor: str = strawberry.field(
        description="Who acted: the principal's subject (token:<name>#<public id> for an API token,"
        " cli:<account> for the command line)."
    )
    token_name: str | None = strawberry.field(
        description="The API token the actor used, if any (null in entries written before"
        " the journal kept it, as are method, clientAddress and requestId)."
    )
    method: str | None = strawberry.field(
        description="How the actor authenticated, one of: " + ", ".join(Method)
    )
    client_address: str | None = strawberry.field(
        description="The client's address as the server saw it (behind a proxy, the address"
        " it forwarded only when the server trusts that proxy); cli for the command line."
    )
    request_id: str | None = strawberry.field(
        description="The id of the HTTP request that made the change (its X-Request-ID)."
    )
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
    hash: str = strawberry.field(
        description="SHA-256 (hex) of the entry's content and prevHash: the journal's hash chain."
    )
    prev_hash: str = strawberry.field(
        description="The hash of the entry before it (64 zeros for the first)."
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
            token_name=row.token_name,
            method=row.auth_method,
            client_address=row.client_address,
            request_id=row.request_id,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=relay.GlobalID(row.entity_type, str(row.entity_id)),
            before=JSON(changes["before"]),
            after=JSON(changes["after"]),
            hash=row.hash,
            prev_hash=row.prev_hash,
        )


@strawberry.type(description="The caller.")
class Me:
    name: str
