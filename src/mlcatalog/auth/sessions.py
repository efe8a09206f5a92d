"""Browser sessions after a login: started, checked on each request, ended at logout.

The cookie holds ``<public id>.<secret>`` (the same kind of credential as an API token): the
public id finds the row with one indexed lookup, the secret is compared in constant time with
the SHA-256 the row keeps, and the secret is stored nowhere. A session ends ``session_hours``
after the login however busy it is, or at logout. Starting and ending are journal entries
(``session.started``, ``session.ended``), never with the cookie or its hash.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mlcatalog.auth.oidc import Unauthenticated
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.auth.tokens import new_credential, secret_hash, secret_matches
from mlcatalog.store import sessions as store
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.entries import record
from mlcatalog.store.journal import Action, BrowserSession
from mlcatalog.store.rows import SessionRow, utcnow

_COOKIE = re.compile(r"(?P<public_id>[0-9a-f]{16})\.(?P<secret>[A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Started:
    expires_at: datetime
    cookie: str = field(repr=False)  # the cookie's value: given to the browser, kept nowhere


def _journaled(row: SessionRow) -> BrowserSession:
    return BrowserSession(subject=row.subject, expires_at=row.expires_at.isoformat())


class Sessions:
    """Sessions in the database: one indexed read per request, nothing cached, so a logout ends
    the session at once for every worker."""

    def __init__(
        self, database: Database, *, hours: float, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.database = database
        self.lifetime = timedelta(hours=hours)
        self._clock = clock

    async def start(
        self,
        principal: Principal,
        *,
        client_address: str | None = None,
        request_id: str | None = None,
    ) -> Started:
        """A new session for ``principal``, journaled as ``session.started`` by that principal,
        from ``client_address`` in request ``request_id``."""
        public_id, secret = new_credential()
        now = self._clock()
        row = SessionRow(
            public_id=public_id,
            secret_sha256=secret_hash(secret),
            subject=principal.subject,
            name=principal.name,
            email=principal.email,
            groups=list(principal.groups),
            created_at=now,
            expires_at=now + self.lifetime,
        )
        origin = Origin(
            actor=principal.subject,
            auth_method=principal.method,
            client_address=client_address,
            request_id=request_id,
        )
        async with self.database.unit_of_work(origin) as uow:
            await store.start(uow, row, now=now)
            record(uow, Action.SESSION_STARTED, row.id, project_id=None, after=_journaled(row))
        return Started(expires_at=row.expires_at, cookie=f"{public_id}.{secret}")

    async def principal(self, cookie: str) -> Principal:
        """Whom the session cookie stands for, or Unauthenticated saying why not."""
        row = await self._live(cookie)
        return Principal(
            subject=row.subject,
            method=Method.SESSION,
            name=row.name,
            email=row.email,
            groups=tuple(row.groups),
        )

    async def end(
        self, cookie: str, *, client_address: str | None = None, request_id: str | None = None
    ) -> bool:
        """End the cookie's session, journaled as ``session.ended`` by its user (from
        ``client_address`` in request ``request_id``); False when it was not a live session
        (nothing to end)."""
        try:
            row = await self._live(cookie)
        except Unauthenticated:
            return False
        origin = Origin(
            actor=row.subject,
            auth_method=Method.SESSION,
            client_address=client_address,
            request_id=request_id,
        )
        async with self.database.unit_of_work(origin) as uow:
            ended = await store.end(uow, row.id)
            if ended:
                record(uow, Action.SESSION_ENDED, row.id, project_id=None, before=_journaled(row))
        return ended

    async def _live(self, cookie: str) -> SessionRow:
        match = _COOKIE.fullmatch(cookie)
        if match is None:
            raise Unauthenticated("the session cookie is malformed: log in again at /auth/login")
        async with self.database.read() as session:
            row = await store.by_public_id(session, match["public_id"])
        matches = secret_matches(match["secret"], row.secret_sha256 if row is not None else None)
        if row is None or not matches:
            raise Unauthenticated(
                "the session is not valid (ended, or unknown): log in again at /auth/login"
            )
        if row.expires_at <= self._clock():
            raise Unauthenticated("the session has expired: log in again at /auth/login")
        return row
