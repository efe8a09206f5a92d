"""The per-request context: the database, the caller and fresh DataLoaders."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from mlcatalog.api.authorize import Gate, WriteRefused
from mlcatalog.api.loaders import Loaders
from mlcatalog.api.rates import RateLimits
from mlcatalog.auth.access import UNRESTRICTED, WRITE, WRITE_OWN, Rights, Verdict
from mlcatalog.auth.principal import Principal
from mlcatalog.catalog.journal import record_denied
from mlcatalog.events.hub import Hub
from mlcatalog.search.backend import SearchBackend
from mlcatalog.settings import SubscriptionSettings, WebhookSettings
from mlcatalog.store import visibility
from mlcatalog.store.database import Database, Origin, UnitOfWork
from mlcatalog.store.journal import CREATIONS, EntityType, policy_objects
from mlcatalog.store.rows import JournalRow


class Caller(Protocol):
    async def connect(self, params: Mapping[str, Any]) -> tuple[Principal, Rights]:
        """Authenticate the connection (connection_init's payload, else the handshake's
        Authorization header or session cookie); refuse it by raising."""
        ...

    async def recheck(self) -> Rights:
        """The caller's rights under the current policy; CatalogError UNAUTHENTICATED once its
        token or session no longer authenticates (checked every few seconds, not every call)."""
        ...


@dataclass
class Context:
    database: Database
    # Who acts: the principal's subject, as the journal records it.
    actor: str
    search: SearchBackend | None = None
    search_timeout: float = 2.0
    operation_timeout: float = 10.0
    max_cost: int = 50_000  # the most objects one query may resolve (api/limits.py)
    # The process's rate limits per principal (api/rates.py); None (in process): no limits.
    rates: RateLimits | None = None
    # The HTTP request's id (RequestId middleware), named in logs and INTERNAL errors.
    request_id: str | None = None
    # Off in production: no __schema/__type, and no names suggested in error messages.
    introspection: bool = True
    # The authenticated caller (None for contexts built in process, as the tests do).
    principal: Principal | None = None
    # What the caller may read and change (api/authorize.py asks); in process, everything.
    access: Rights = UNRESTRICTED
    gate: Gate = field(init=False)
    # The peer's address as uvicorn gives it (X-Forwarded-For only from --forwarded-allow-ips).
    client_address: str | None = None
    loaders: Loaders = field(init=False)
    # How testWebhook's ping goes out (the addresses it may reach, its timeouts).
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    # The operation's execution (its document, name and type) for CatalogSchema.execute, which
    # records the operation when it ends; set by the first extension, KeepExecution.
    execution: ExecutionContext | None = field(default=None, init=False)
    # The operation's deadline (CatalogSchema.execute), lifted once a write is about to commit.
    deadline: asyncio.Timeout | None = field(default=None, init=False)
    # The process's event hub (events/hub.py); None in process: no subscriptions.
    hub: Hub | None = None
    subscriptions: SubscriptionSettings | None = None
    # A WebSocket's caller (api/websocket.py): authenticated at connection_init, checked again
    # while its streams run. None in process and over HTTP.
    caller: "Caller | None" = None
    # A WebSocket's connection_init payload (strawberry sets it).
    connection_params: dict[str, Any] | None = None
    # What the response cache (api/cache.py) decides by: the query's cost and the fields it
    # reads (RequestLimits, once the query passed its limits), its errors' codes (the schema).
    cost: int | None = field(default=None, init=False)
    reads: frozenset[str] = field(default=frozenset(), init=False)
    error_codes: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        self.act_as(self.access)

    def act_as(self, access: Rights, principal: Principal | None = None) -> None:
        """Answer with these rights from now on (a WebSocket's caller, once authenticated, and
        whenever the policy changes under an open stream); fresh loaders, so nothing read with
        the old rights is served."""
        if principal is not None:
            self.principal, self.actor = principal, principal.subject
        self.access = access
        self.gate = Gate(access)
        self.loaders = Loaders(self.database, self.gate.visible)

    def for_operation(self) -> "Context":
        """A context of its own for one operation of a WebSocket (operations there run
        concurrently, and a stream's rights change on their own)."""
        return dataclasses.replace(self)

    def origin(self) -> Origin:
        """Who acts and from where, as the journal records it."""
        principal = self.principal
        return Origin(
            actor=self.actor,
            token_name=principal.token.name if principal and principal.token else None,
            auth_method=principal.method if principal else None,
            client_address=self.client_address,
            request_id=self.request_id,
        )

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One write transaction on the caller's behalf; reads after it see what it wrote.

        Once its rule ran, the write commits and the operation answers: the deadline no longer
        applies. Cut short in or after the commit, it would answer DEADLINE_EXCEEDED ("ask for
        less") for a write that was applied, and the client might apply it again. Before that
        point a deadline rolls the write back, and the answer is true.
        """
        await self.loaders.reset()
        async with self.database.unit_of_work(
            self.origin(), check=self.check_writes, visible=self.gate.visible
        ) as uow:
            yield uow
            if self.deadline is not None:
                self.deadline.reschedule(None)
        await self.loaders.reset()

    async def check_writes(self, uow: UnitOfWork) -> None:
        """Refuse the write unless the running mutation may make each of its journaled changes
        in the change's project (``write``, or ``write-own`` on what the caller created), and the
        caller may write every policy object the change needs besides (``policy_objects``: the
        stages a version leaves and enters)."""
        mutation, access = self.gate.mutation, self.access
        if mutation is None:
            raise RuntimeError("a write outside a mutation cannot be authorized")
        needs = [(entry, policy_objects(entry)) for entry in uow.journal]
        # Allowed in every project there is: nothing to look up. (Allowed in every project the
        # caller sees is not enough: a change may land in another, as a new model can.)
        everywhere = access.uniform and self.gate.visible.everything
        objects = {obj for _, found in needs for obj in found}
        if everywhere and all(
            access.verdict(obj, WRITE) is Verdict.ALLOW for obj in (mutation, *objects)
        ):
            return
        names = await visibility.project_names(uow.session, (e.project_id for e in uow.journal))
        for entry, found in needs:
            project = names.get(entry.project_id) if entry.project_id is not None else None
            for obj in found:
                if not access.allows(obj, WRITE, project):
                    reason = f"the policy does not let you write {obj} in project {project!r}"
                    raise WriteRefused(reason, entry.project_id)
            if access.allows(mutation, WRITE, project):
                continue
            if access.allows(mutation, WRITE_OWN, project):
                if await self._created(uow, entry):
                    continue
                reason = f"the policy lets you run {mutation} in project {project!r} only on"
                reason += " what you created"
            else:
                reason = f"the policy does not let you run {mutation} in project {project!r}"
            raise WriteRefused(reason, entry.project_id)

    async def _created(self, uow: UnitOfWork, entry: JournalRow) -> bool:
        """Whether the actor created the entity ``entry`` is about: in this write, or by the
        journal's latest creation entry about it."""
        key = (entry.entity_type, entry.entity_id)
        creation = CREATIONS.get(EntityType(entry.entity_type))
        if any((e.entity_type, e.entity_id) == key and e.action == creation for e in uow.journal):
            return True
        made_by = await visibility.creator(uow.session, entry.entity_type, entry.entity_id)
        return made_by == uow.actor

    async def journal_denied(self, mutation: str, project_id: int | None, reason: str) -> None:
        await record_denied(
            self.database, self.origin(), mutation=mutation, project_id=project_id, reason=reason
        )


class KeepExecution(SchemaExtension):
    """Hand the operation's execution context to CatalogSchema.execute through the Context.

    Strawberry keeps it to itself, and no extension's end of the operation resumes when a hook
    raises (a syntax error in ParserCache) or the deadline cancels the operation, so the
    schema's ``execute``, which every ending passes, records the operation from it.
    """

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            context.execution = self.execution_context
        yield


class EndRequestReads(SchemaExtension):
    """Close the request's read session when the operation ends."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        if isinstance(context, Context):
            await context.loaders.reset()


class HiddenSchema(SchemaExtension):
    """Refuse introspection when the request's context says the schema is hidden.

    Decided per request rather than by a second schema: strawberry's relay ``node`` field
    cannot be converted into two schemas in one process. The rule joins the validation rules,
    so the validation cache keeps one entry per document and visibility.
    """

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and not context.introspection:
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield


Info = strawberry.Info[Context, None]
