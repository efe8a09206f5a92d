"""catalogEvents: the journal as a live stream, resumable from any event's cursor."""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from functools import lru_cache

import strawberry

from mlcatalog.api.context import Context, Info
from mlcatalog.api.types.events import CatalogEvent, CatalogEventFilter, event_cursor, event_seq
from mlcatalog.auth.access import READ, Rights
from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.events.hub import Hub
from mlcatalog.settings import SubscriptionSettings
from mlcatalog.store import queries
from mlcatalog.store.queries import JournalEvent

# The projects whose events a caller receives: those where it may read this field.
COORDINATE = "Subscription.catalogEvents"
# Entries of no project (sessions, API tokens, policy reloads) go only to readers of the whole
# audit log, as auditLog shows them, not to everyone who sees every project.
UNOWNED = "Query.auditLog"


class Stream:
    """One subscriber's events: the replay after its cursor, then the hub's live ones.

    No gap, no duplicate: the hub's queue is taken before the replay reads the journal, so an
    entry committed meanwhile is in the replay, the queue or both, and the stream skips any
    entry at or below the last position it covered. Rights are read again before every batch
    (the current policy; the token or session when due), so a change reaches an open stream.
    """

    def __init__(
        self,
        context: Context,
        hub: Hub,
        settings: SubscriptionSettings,
        filter: CatalogEventFilter,
        after: int | None,
    ) -> None:
        self.context = context
        self.hub = hub
        self.settings = settings
        self.filter = filter
        self.model_ids = frozenset(filter.model_ids())
        self.actions = filter.checked_actions()
        self.after = after
        self.covered = 0  # the last journal position this stream has answered for
        self.rights(context.access)

    def rights(self, access: Rights) -> None:
        self.visible = access.visible(COORDINATE)
        self.unowned = access.allows(UNOWNED, READ, None)

    def accepts(self, event: JournalEvent) -> bool:
        if event.project is None and not self.unowned:
            return False
        return self.visible.shows(event.project) and self.filter.matches(event, self.model_ids)

    async def refresh(self) -> None:
        """The caller's rights now; UNAUTHENTICATED ends the stream."""
        context = self.context
        if context.caller is None:
            return
        access = await context.caller.recheck()
        if access is not context.access:
            await context.loaders.reset()
            context.act_as(access)
            self.rights(access)

    async def events(self) -> AsyncGenerator[CatalogEvent, None]:
        subscriber = self.hub.subscribe(self.settings.queue_size, self.accepts)
        try:
            self.covered = subscriber.start if self.after is None else self.after
            if self.after is not None:
                async for replayed in self.replay():
                    yield replayed
            while True:
                # asyncio.timeout, not wait_for: no task per wait for each of a thousand streams.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.recheck_seconds):
                        await subscriber.wake.wait()
                await self.refresh()
                if subscriber.overflowed:
                    raise CatalogError(
                        ErrorCode.FAILED_PRECONDITION,
                        f"this subscriber fell more than {self.settings.queue_size} events"
                        " behind and was stopped: subscribe again with after:"
                        f" {event_cursor(self.covered)!r} to receive the rest",
                    )
                for event in subscriber.take():
                    if event.row.seq <= self.covered or not self.accepts(event):
                        continue
                    self.covered = event.row.seq
                    yield await self.answer(event)
        finally:
            self.hub.unsubscribe(subscriber)

    async def replay(self) -> AsyncIterator[CatalogEvent]:
        """The entries after the cursor this caller may see and asked for, a batch at a time."""
        batch = self.settings.batch
        while True:
            await self.refresh()
            async with self.context.database.read() as session:
                found = await queries.journal_events(
                    session,
                    after=self.covered,
                    limit=batch,
                    visible=self.visible,
                    unowned=self.unowned,
                    projects=self.filter.projects or (),
                    model_ids=sorted(self.model_ids),
                    actions=self.actions,
                )
            for event in found:
                self.covered = event.row.seq
                if self.filter.matches(event, self.model_ids):  # the stages, not in the SQL
                    yield await self.answer(event)
            if len(found) < batch:
                return

    async def answer(self, event: JournalEvent) -> CatalogEvent:
        # Each event reads its entity afresh: nothing cached for the previous one is served.
        await self.context.loaders.reset()
        return event_of(event)


@lru_cache(maxsize=4096)
def event_of(event: JournalEvent) -> CatalogEvent:
    """One object per live event for all the subscribers the hub offered it to (it holds no
    caller's data: each caller's fields are resolved and checked in its own context)."""
    return CatalogEvent.from_event(event)


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(
        description="Committed changes as they happen, in journal order, on entities you may"
        " read. With after: (an event's cursor), every matching event after it first, then live"
        " ones, with no gap and no duplicate: reconnect with the last cursor you received and"
        " miss nothing, across server restarts too. A subscriber too slow to keep up is stopped"
        " with FAILED_PRECONDITION naming the cursor to resume from."
    )
    async def catalog_events(
        self,
        info: Info,
        filter: CatalogEventFilter | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[CatalogEvent, None]:
        context = info.context
        if context.hub is None or context.subscriptions is None:
            raise CatalogError(
                ErrorCode.FAILED_PRECONDITION, "subscriptions are served over a WebSocket only"
            )
        # Checked here, before the stream starts: a bad filter or cursor is the operation's
        # error (the protocol's error message), not an event.
        stream = Stream(
            context,
            context.hub,
            context.subscriptions,
            filter or CatalogEventFilter(),
            None if after is None else event_seq(after),
        )
        return stream.events()
