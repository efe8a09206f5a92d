"""The engine, read sessions and the unit of work (one write transaction)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, event, make_url, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from mlcatalog.store import audit
from mlcatalog.store.rows import JournalHeadRow, JournalRow
from mlcatalog.store.visibility import EVERYTHING, Visible

# Journal appends on PostgreSQL take this transaction-scoped advisory lock just before commit, so
# sequence numbers are committed in the order they are handed out and a tailer reading
# ``seq > checkpoint`` can never skip an entry that commits late with a lower number.
JOURNAL_LOCK_KEY = 0x6D6C636174  # "mlcat"

# On PostgreSQL a transaction that journals NOTIFYs this channel with its last seq; the server
# delivers it at commit, to every process's listener (events/hub.py), in commit order.
JOURNAL_CHANNEL = "mlcatalog_journal"

ReadSession = AsyncSession
"""A session for reads, under the name the layers above use (they import no SQLAlchemy)."""


def display_url(url: str) -> str:
    """The URL as logs and the CLI may show it: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "<a database URL that does not parse>"


ORIGIN_CHARS = 200
"""The most characters of each of an origin's details that a journal entry keeps."""


@dataclass(frozen=True)
class Origin:
    """Who acts and from where: every journal entry of a unit of work records it."""

    actor: str
    """The principal's subject (``token:<name>#<public id>`` for a token, ``cli:<account>``)."""
    token_name: str | None = None
    """The API token the actor authenticated with, if any."""
    auth_method: str | None = None
    """How the actor authenticated (auth.principal.Method)."""
    client_address: str | None = None
    """The peer's address as the server saw it (uvicorn); ``cli`` for the command line."""
    request_id: str | None = None
    """The HTTP request's id (api/middleware.RequestId)."""

    def __post_init__(self) -> None:
        # The address may come from a header a trusted proxy passed on (uvicorn's
        # --forwarded-allow-ips), so its length is not ours to choose: cut every detail to its
        # column instead of failing the write. Slicing also makes a StrEnum a plain str.
        for name in ("token_name", "auth_method", "client_address", "request_id"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, value[:ORIGIN_CHARS])


@dataclass
class UnitOfWork:
    """One write transaction on behalf of one origin: the rows and their journal entries."""

    session: AsyncSession
    origin: Origin
    dialect: str
    journal: list[JournalRow] = field(default_factory=list)
    # The projects the actor sees: an entity elsewhere is NOT_FOUND to this write, as a missing
    # one (catalog/steps.get), so no write reads, links or reveals what its actor cannot see.
    visible: Visible = EVERYTHING

    @property
    def actor(self) -> str:
        return self.origin.actor


def _sqlite_engine(url: str, *, echo: bool, immediate: bool) -> AsyncEngine:
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def configure(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def begin(connection: Connection) -> None:
        # A write transaction takes the write lock up front: a deferred one that read first
        # would fail with SQLITE_BUSY instead of waiting when another writer got in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Rounds:
    """One read of a value at a time, shared by every caller that asked before it began.

    A caller joins the next read to start, never one already running (that one may have begun
    before a commit the caller has seen): so each caller gets a value read after it asked, and
    N concurrent callers cost about two reads, not N. Used for the journal's head on PostgreSQL,
    where a read is a round trip that every cached answer would otherwise pay.
    """

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        self._next: asyncio.Future[int] | None = None  # the round that has not begun
        self._reader: asyncio.Task[None] | None = None

    async def read(self) -> int:
        loop = asyncio.get_running_loop()
        reader = self._reader
        if reader is None or reader.done() or reader.get_loop() is not loop:
            # None runs in this loop (a loop closed mid-read leaves its task pending forever).
            self._next = loop.create_future()
            self._reader = loop.create_task(self._run())
        elif self._next is None:
            self._next = loop.create_future()
        # Shielded: a caller that gives up does not cancel the others' read.
        return await asyncio.shield(self._next)

    async def _run(self) -> None:
        while self._next is not None:
            round_, self._next = self._next, None
            try:
                round_.set_result(await self._read())
            except Exception as error:  # every caller of the round gets it
                round_.set_exception(error)


_HEAD = select(JournalHeadRow.seq).where(JournalHeadRow.id == 1)


def _sqlite_head_engine(url: str, *, echo: bool) -> Engine | None:
    """A synchronous engine for the journal's head: a one-row read takes microseconds in the
    event loop's thread, where a round trip through aiosqlite's thread takes a few hundred (and
    every cached answer pays it). A WAL reader waits for no writer; the short timeout bounds
    the rare wait (a checkpoint's), after which the caller reads through aiosqlite instead."""
    parsed = make_url(url)
    if parsed.database in (None, "", ":memory:"):
        return None  # another connection would open another database
    return create_engine(
        parsed.set(drivername="sqlite+pysqlite"),
        echo=echo,
        isolation_level="AUTOCOMMIT",  # each read sees the newest commit
        connect_args={"timeout": 0.05},
    )


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, echo=echo, immediate=False)
            self.write_engine = _sqlite_engine(url, echo=echo, immediate=True)
            self.head_engine = _sqlite_head_engine(url, echo=echo)
        else:
            self.engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=20)
            self.write_engine = self.engine
            self.head_engine = None
        # The head's connection, held for the engine's life (a checkout costs more than the
        # read): used in the event loop's thread only, one statement at a time.
        self._head: Connection | None = None
        self._head_rounds = Rounds(self._read_head)
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(self.write_engine, expire_on_commit=False)
        # Called with the journal's new head after each commit that journaled, on SQLite (one
        # process serves subscriptions there); PostgreSQL wakes every process by NOTIFY instead.
        self.on_commit: list[Callable[[int], None]] = []

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short read-only session."""
        async with self._reads() as session:
            yield session

    def read_session(self) -> ReadSession:
        """A read session whose owner closes it (the API keeps one per request)."""
        return self._reads()

    @asynccontextmanager
    async def unit_of_work(
        self,
        origin: Origin,
        *,
        check: Callable[[UnitOfWork], Awaitable[None]] | None = None,
        visible: Visible = EVERYTHING,
    ) -> AsyncIterator[UnitOfWork]:
        """One transaction: commits when the block ends, rolls everything back on an error.

        ``check`` sees the unit's journal entries before they commit and may refuse them by
        raising (the API's authorizer: every change is journaled, so none escapes it);
        ``visible``: the projects whose entities this write may find (UnitOfWork.visible)."""
        async with self._writes() as session, session.begin():
            uow = UnitOfWork(session=session, origin=origin, dialect=self.dialect, visible=visible)
            yield uow
            if check is not None:
                await check(uow)
            if uow.journal:
                if self.dialect == "postgresql":
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": JOURNAL_LOCK_KEY}
                    )
                # Under the lock (one writer at a time on SQLite): number the entries and chain
                # them to the last committed one, in one small query.
                await audit.link(session, uow.journal, self.dialect)
                session.add_all(uow.journal)
                if self.dialect == "postgresql":
                    head = max(entry.seq for entry in uow.journal)
                    await session.execute(
                        text("SELECT pg_notify(:channel, :head)"),
                        {"channel": JOURNAL_CHANNEL, "head": str(head)},
                    )
        if uow.journal and self.dialect != "postgresql":
            head = max(entry.seq for entry in uow.journal)
            for wake in self.on_commit:
                wake(head)

    def asyncpg_dsn(self) -> str:
        """The URL as asyncpg takes it (the event hub's listener connection)."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def sync_engines(self) -> list[Engine]:
        """The engines' synchronous faces (one on PostgreSQL, two on SQLite), for instruments
        such as tracing that hook SQLAlchemy's engine events."""
        engines = [self.engine.sync_engine, self.write_engine.sync_engine, self.head_engine]
        return [engine for engine in dict.fromkeys(engines) if engine is not None]

    async def journal_head(self) -> int:
        """The newest committed journal entry's seq (0 for none), as every process sees it now:
        one primary-key read of the one-row head that every append moves in its transaction.
        Read for every request the response cache answers (api/cache.py), so it is made cheap:
        outside a transaction, and on SQLite in this thread (below)."""
        if self.head_engine is not None:
            try:
                if self._head is None:
                    self._head = self.head_engine.connect()
                return int(self._head.scalar(_HEAD) or 0)
            except DBAPIError:
                # Locked past the short timeout, or this thread may not use the connection:
                # through aiosqlite this once.
                self._close_head()
        return await self._head_rounds.read()

    async def _read_head(self) -> int:
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            return int(await autocommit.scalar(_HEAD) or 0)

    def _close_head(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            with contextlib.suppress(DBAPIError):
                head.close()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.head_engine is not None:
            self._close_head()
            self.head_engine.dispose()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
