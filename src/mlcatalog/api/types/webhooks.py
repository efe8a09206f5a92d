"""Webhooks: a project's hooks and every attempt to deliver to them (never their secrets)."""

from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry import UNSET, relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import RowNode, given
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.journal import Action
from mlcatalog.store.paging import DELIVERIES_OF_WEBHOOK
from mlcatalog.store.rows import WebhookDeliveryRow, WebhookRow

ACTIONS = "Journal actions, among: " + ", ".join(Action)


@strawberry.type(description="One attempt to deliver an event (or a ping) to a hook.")
class WebhookDelivery:
    event_id: float | None = strawberry.field(
        description="The journal entry's sequence, the event's id (null for a ping)."
    )
    action: str
    attempt: int = strawberry.field(description="1 for the first try of this event, then 2 …")
    status_code: int | None = strawberry.field(description="The receiver's HTTP status, if any.")
    error: str | None = strawberry.field(
        description="Why it failed (no answer, a refused address, a status other than 2xx)."
    )
    duration_ms: float
    at: datetime

    @classmethod
    def from_row(cls, row: WebhookDeliveryRow) -> Self:
        return cls(
            event_id=None if row.seq is None else float(row.seq),
            action=row.action,
            attempt=row.attempt,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
            at=row.at,
        )


@strawberry.type(
    description="Where a project's events are POSTed, signed with the hook's secret (which is"
    " shown once, when the hook is created, and never again)."
)
class Webhook(RowNode):
    row_type = WebhookRow
    id: relay.NodeID[int]
    url: str
    actions: list[str] = strawberry.field(description=ACTIONS)
    stages: list[Stage] = strawberry.field(
        description="Stage moves are delivered only into these stages (empty: all)."
    )
    models: list[relay.GlobalID] = strawberry.field(
        description="Only events about these models and their versions (empty: all)."
    )
    include_changes: bool = strawberry.field(
        description="Whether events carry the entry's before and after."
    )
    enabled: bool
    consecutive_failures: int = strawberry.field(
        description="Failed attempts in a row at the oldest undelivered event."
    )
    delivered_through: float = strawberry.field(
        description="The journal sequence delivered (or passed as not matching) last."
    )
    next_attempt_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime

    project_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: WebhookRow) -> Self:
        return cls(
            id=row.id,
            project_id=row.project_id,
            url=row.url,
            actions=list(row.actions),
            stages=[Stage(s) for s in row.stages],
            models=[relay.GlobalID("Model", str(i)) for i in row.model_ids],
            include_changes=row.include_changes,
            enabled=row.enabled,
            consecutive_failures=row.failures,
            delivered_through=float(row.delivered_seq),
            next_attempt_at=row.retry_at,
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="Every attempt, newest first.")
    async def deliveries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[WebhookDelivery]:
        return await children_connection(
            info.context.loaders,
            DELIVERIES_OF_WEBHOOK,
            self.id,
            WebhookDelivery.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )


def _models(ids: list[relay.GlobalID]) -> list[int]:
    return [decode(i, "Model") for i in ids]


@strawberry.input
class CreateWebhookInput:
    project: str
    url: str = strawberry.field(description="http(s); private addresses are refused on delivery.")
    actions: list[str] = strawberry.field(description=ACTIONS)
    secret: str | None = strawberry.field(
        default=None, description="16 to 200 characters; left out, the server makes one."
    )
    stages: list[Stage] = strawberry.field(default_factory=list)
    models: list[relay.GlobalID] = strawberry.field(default_factory=list)
    include_changes: bool = False
    enabled: bool = True

    def to_catalog(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "actions": self.actions,
            "secret": self.secret,
            "stages": [s.value for s in self.stages],
            "model_ids": _models(self.models),
            "include_changes": self.include_changes,
            "enabled": self.enabled,
        }


@strawberry.type
class CreateWebhookPayload:
    webhook: Webhook
    secret: str = strawberry.field(
        description="The signing secret: shown here once, readable nowhere afterwards."
    )


@strawberry.input(description="Fields left out stay as they are.")
class UpdateWebhookInput:
    id: relay.GlobalID
    url: str | None = UNSET
    secret: str | None = strawberry.field(
        default=UNSET, description="A new signing secret (the old one stops at once)."
    )
    actions: list[str] | None = UNSET
    stages: list[Stage] | None = UNSET
    models: list[relay.GlobalID] | None = UNSET
    include_changes: bool | None = UNSET
    enabled: bool | None = strawberry.field(
        default=UNSET, description="true again clears the run of failures: retries at once."
    )

    def to_catalog(self) -> dict[str, Any]:
        changes = given(
            url=self.url,
            secret=self.secret,
            actions=self.actions,
            include_changes=self.include_changes,
            enabled=self.enabled,
        )
        if self.stages is not UNSET:
            changes["stages"] = [s.value for s in self.stages or []]
        if self.models is not UNSET:
            changes["model_ids"] = _models(self.models or [])
        # null means "as it is" for fields that cannot be empty.
        return {key: value for key, value in changes.items() if value is not None}


@strawberry.type
class UpdateWebhookPayload:
    webhook: Webhook


@strawberry.input
class DeleteWebhookInput:
    id: relay.GlobalID


@strawberry.type
class DeleteWebhookPayload:
    deleted_id: relay.GlobalID


@strawberry.input
class TestWebhookInput:
    id: relay.GlobalID


@strawberry.type
class TestWebhookPayload:
    delivery: WebhookDelivery
