"""The catalogEvents subscription's types: an event, its filter and its cursor."""

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.pagination import encode_cursor
from mlcatalog.api.types.common import RowNode, load_node
from mlcatalog.catalog.errors import invalid
from mlcatalog.catalog.versions import Stage
from mlcatalog.store import journal
from mlcatalog.store.journal import Action, EntityType
from mlcatalog.store.queries import JournalEvent

CURSOR_SCOPE = "events"


def event_cursor(seq: int) -> str:
    return encode_cursor(CURSOR_SCOPE, [seq])


def event_seq(cursor: str) -> int:
    """The journal position in a cursor catalogEvents returned; INVALID_ARGUMENT otherwise."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor[:200].encode()))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        decoded = None
    if (
        len(cursor) > 200
        or not isinstance(decoded, list)
        or len(decoded) != 2
        or decoded[0] != CURSOR_SCOPE
        or type(decoded[1]) is not int
        or decoded[1] < 0
    ):
        raise invalid("not a cursor catalogEvents returned")
    return int(decoded[1])


@strawberry.type(description="One committed change, as catalogEvents delivers it.")
class CatalogEvent:
    cursor: str = strawberry.field(
        description="Where this event is in the journal: subscribe with after: this cursor to"
        " receive every later event, after a reconnect or a server restart as well."
    )
    sequence: float = strawberry.field(description="The journal entry's sequence number.")
    action: str = strawberry.field(
        description="entity.past_tense_verb, one of: " + ", ".join(Action)
    )
    at: datetime
    actor: str = strawberry.field(description="Who acted: the principal's subject.")
    project: str | None = strawberry.field(description="The entity's project, if it has one.")
    entity_type: str = strawberry.field(description="One of: " + ", ".join(EntityType))
    entity_id: relay.GlobalID = strawberry.field(description="The entity's id (it may be deleted).")
    before: JSON | None = strawberry.field(
        description="The changed fields' values before (the journal entry's before)."
    )
    after: JSON | None = strawberry.field(
        description="The changed fields' values after (the journal entry's after)."
    )

    project_id: strawberry.Private[int | None]

    @strawberry.field(
        description="The entity as it is now, by its own type; null once deleted or when it is"
        " not a node (a lineage edge, a token, a session)."
    )
    async def entity(self, info: Info) -> relay.Node | None:
        if self.entity_type not in RowNode.by_name:
            return None
        node: Any = await load_node(info, self.entity_type, int(self.entity_id.node_id))
        return node  # type: ignore[no-any-return]

    @classmethod
    def from_event(cls, event: JournalEvent) -> Self:
        row = event.row
        changes = journal.changes(row)
        return cls(
            project_id=row.project_id,
            cursor=event_cursor(row.seq),
            sequence=float(row.seq),
            action=row.action,
            at=row.at,
            actor=row.actor,
            project=event.project,
            entity_type=row.entity_type,
            entity_id=relay.GlobalID(row.entity_type, str(row.entity_id)),
            before=JSON(changes["before"]),
            after=JSON(changes["after"]),
        )


@strawberry.input(description="Every given condition must hold; within one, any value matches.")
class CatalogEventFilter:
    projects: list[str] | None = strawberry.field(default=None, description="Project names.")
    models: list[relay.GlobalID] | None = strawberry.field(
        default=None, description="Models: their events and their versions' events."
    )
    actions: list[str] | None = strawberry.field(
        default=None, description="Actions (entity.past_tense_verb)."
    )
    stages: list[Stage] | None = strawberry.field(
        default=None,
        description="Events whose change moves something into or out of one of these stages.",
    )

    def model_ids(self) -> list[int]:
        return [decode(model, EntityType.MODEL) for model in self.models or ()]

    def checked_actions(self) -> list[str]:
        known = set(Action)
        for action in self.actions or ():
            if action not in known:
                raise invalid(f"unknown action {action[:100]!r}")
        return list(self.actions or ())

    def matches(self, event: JournalEvent, model_ids: frozenset[int]) -> bool:
        """The whole filter, in Python, for the live events the hub fans out."""
        row = event.row
        if self.projects and event.project not in self.projects:
            return False
        if model_ids and event.model_id not in model_ids:
            return False
        if self.actions and row.action not in self.actions:
            return False
        if self.stages:
            stages = {str(stage) for stage in self.stages}
            sides = journal.changes(row)
            moved = {side.get("stage") for side in (sides["before"], sides["after"])}
            if not stages & moved:
                return False
        return True
