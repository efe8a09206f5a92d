"""The hub: one process's tail of the journal, fanned out to its subscribers' bounded queues.

The journal is the only source of events: a wake-up (SQLite: the unit of work after commit;
PostgreSQL: NOTIFY from any process, on one listener connection per process) makes the hub read
the entries after the last one it fanned out, once for all subscribers, in bounded batches.
Each subscriber keeps what it may see and what it asked for in a queue of its own; a subscriber
that falls behind overflows its own queue and is told to resume from its cursor, so a slow
reader slows no one else and memory stays bounded.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from mlcatalog.store import queries
from mlcatalog.store.database import JOURNAL_CHANNEL, Database
from mlcatalog.store.queries import JournalEvent
from mlcatalog.store.visibility import EVERYTHING

log = logging.getLogger("mlcatalog.events")

Accepts = Callable[[JournalEvent], bool]


class Subscriber:
    """One stream's queue: what the hub fanned out after ``start`` that ``accepts`` keeps."""

    def __init__(self, start: int, size: int, accepts: Accepts) -> None:
        self.start = start
        self.size = size
        self.accepts = accepts
        self.events: deque[JournalEvent] = deque()
        self.overflowed = False
        self.wake = asyncio.Event()

    def offer(self, events: Sequence[JournalEvent]) -> None:
        if self.overflowed:
            return
        for event in events:
            if not self.accepts(event):
                continue
            if len(self.events) >= self.size:
                # Dropping silently would be a gap; the stream ends and the client resumes.
                self.overflowed = True
                self.events.clear()
                break
            self.events.append(event)
        if self.events or self.overflowed:
            self.wake.set()

    def take(self) -> list[JournalEvent]:
        taken = list(self.events)
        self.events.clear()
        self.wake.clear()
        return taken


class Hub:
    """Tails the journal for this process's subscribers (see the module's docstring)."""

    def __init__(self, database: Database, *, batch: int, poll_seconds: float) -> None:
        self.database = database
        self.batch = batch
        # A safety net, not the mechanism: a NOTIFY lost with the listener's connection is
        # found at the next poll.
        self.poll_seconds = poll_seconds
        self.position = 0  # the last seq fanned out
        self.subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._listener: Any = None  # asyncpg.Connection on PostgreSQL

    def subscribe(self, size: int, accepts: Accepts) -> Subscriber:
        """A queue that receives every entry after the hub's position that ``accepts`` keeps.

        Taken before a replay reads the journal, so entries committed during the replay are
        in the replay, in the queue or both (a stream skips what it already sent): no gap.
        """
        subscriber = Subscriber(self.position, size, accepts)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def notify(self, head: int) -> None:
        if head > self.position:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        # The head first, before any subscriber registers: a live stream starts there.
        async with self.database.read() as session:
            self.position = await queries.journal_head(session)
        if self.database.dialect != "postgresql":
            self.database.on_commit.append(self.notify)
        # A stop wakes the wait below at once (a shutdown waited out a whole poll otherwise).
        stopping = asyncio.create_task(self._wake_on(stop))
        try:
            while not stop.is_set():
                try:
                    if self.database.dialect == "postgresql":
                        await self._listen()
                    await self.catch_up()
                except Exception as error:  # the database away, a listener dropped: retry
                    log.warning("the event hub cannot read the journal now: %r", error)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            stopping.cancel()
            if self.notify in self.database.on_commit:
                self.database.on_commit.remove(self.notify)
            if self._listener is not None:
                await self._listener.close()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self.database.asyncpg_dsn())
        await self._listener.add_listener(JOURNAL_CHANNEL, self._notified)

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self.notify(int(payload))

    async def catch_up(self) -> None:
        """Fan out every entry after the hub's position, a batch at a time."""
        while True:
            async with self.database.read() as session:
                events = await queries.journal_events(
                    session, after=self.position, limit=self.batch, visible=EVERYTHING
                )
            if not events:
                return
            self.position = events[-1].row.seq
            for subscriber in list(self.subscribers):
                subscriber.offer(events)
            if len(events) < self.batch:
                return
