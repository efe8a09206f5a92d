"""API tokens for pipelines and service accounts: made, listed, revoked and checked.

A token is ``mlc_<public id>_<secret>``: the public id (16 hex digits) finds its row with one
indexed lookup, and the secret (``secrets.token_urlsafe(32)``, 256 bits) is compared, in
constant time, with the SHA-256 the row keeps; the secret itself is shown once, at creation, and
stored nowhere. A token acts as ``token:<name>#<public id>`` (a name is free again once its
token is revoked, so the name alone would not tell two tokens apart in the journal) and carries
the project and role it was made for. Creating and revoking are journal entries (never with the
secret or its hash). Every check reads the row, so a revoked token stops working at its next
request: nothing is cached.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mlcatalog.auth.oidc import Unauthenticated
from mlcatalog.auth.principal import Method, Principal, TokenGrant
from mlcatalog.store import tokens as store
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.entries import record
from mlcatalog.store.journal import Action, ApiToken, Revocation
from mlcatalog.store.rows import ApiTokenRow, utcnow

PREFIX = "mlc_"
SUBJECT_PREFIX = "token:"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,49}")
_TOKEN = re.compile(r"mlc_(?P<public_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})")


class TokenError(ValueError):
    """A token cannot be made or revoked as asked (bad name, lifetime, unknown name, taken)."""


@dataclass(frozen=True)
class TokenInfo:
    """A token as listings show it: never its secret, nor the secret's hash."""

    name: str
    prefix: str
    subject: str
    project: str
    role: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiTokenRow) -> "TokenInfo":
        return cls(
            name=row.name,
            prefix=PREFIX + row.public_id,
            subject=row.subject,
            project=row.project,
            role=row.role,
            created_at=row.created_at,
            created_by=row.created_by,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )

    def journaled(self) -> ApiToken:
        return ApiToken(
            name=self.name,
            prefix=self.prefix,
            subject=self.subject,
            project=self.project,
            role=self.role,
            expires_at=self.expires_at.isoformat(),
        )


@dataclass(frozen=True)
class Created:
    info: TokenInfo
    token: str = field(repr=False)  # the whole token: shown once, kept nowhere, never logged


def subject_of(name: str, public_id: str) -> str:
    return f"{SUBJECT_PREFIX}{name}#{public_id}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, in constant time; compared even when there
    is no row (None), so an unknown public id takes as long to refuse as a wrong secret."""
    return hmac.compare_digest(secret_hash(secret), stored_hash or "0" * 64) and bool(stored_hash)


def new_credential() -> tuple[str, str]:
    """A public id (16 hex digits: finds the row) and a secret (256 bits: only its hash is kept)."""
    return secrets.token_hex(8), secrets.token_urlsafe(32)


def looks_like_token(credential: str) -> bool:
    """Whether a credential (a whole Authorization header, or the token alone) is meant as an API
    token, and so must verify as one. A JWT never starts with the prefix (its header is "eyJ…")."""
    return any(word.startswith(PREFIX) for word in credential.split())


async def create(
    database: Database,
    *,
    origin: Origin,
    name: str,
    project: str,
    role: str,
    days: int,
    max_days: int,
    now: datetime | None = None,
) -> Created:
    """A new token, journaled as ``api_token.created``; TokenError when the name is not valid,
    is taken by a live token, or the lifetime is not 1 to ``max_days`` days."""
    if not _NAME.fullmatch(name):
        raise TokenError(
            "a token name is 1 to 100 of a-z, 0-9, '.', '_' and '-', starting with a letter or"
            " digit"
        )
    if not project.strip() or len(project) > 100:
        raise TokenError("a token's project must be 1 to 100 characters")
    if not _ROLE.fullmatch(role):
        # A role is a bare name: `user:alice` would make the token act as alice in its project.
        raise TokenError("a token's role is a role's name: 1 to 50 of a-z, 0-9, '_' and '-'")
    if not 1 <= days <= max_days:
        raise TokenError(f"a token lives 1 to {max_days} days, not {days}")
    public_id, secret = new_credential()
    created_at = now or utcnow()
    row = ApiTokenRow(
        name=name,
        public_id=public_id,
        secret_sha256=secret_hash(secret),
        subject=subject_of(name, public_id),
        project=project,
        role=role,
        created_at=created_at,
        created_by=origin.actor,
        expires_at=created_at + timedelta(days=days),
    )
    async with database.unit_of_work(origin) as uow:
        try:
            await store.add(uow, row)
        except store.TokenNameTaken:
            raise TokenError(
                f"a token named {name!r} exists: revoke it first, or choose another name"
            ) from None
        info = TokenInfo.of(row)
        record(uow, Action.API_TOKEN_CREATED, row.id, project_id=None, after=info.journaled())
    return Created(info=info, token=f"{PREFIX}{public_id}_{secret}")


async def revoke(
    database: Database, *, origin: Origin, name: str, now: datetime | None = None
) -> TokenInfo:
    """Revoke the live token called ``name``, journaled as ``api_token.revoked``; TokenError when
    there is none."""
    async with database.unit_of_work(origin) as uow:
        row = await store.live_by_name(uow, name)
        if row is None:
            raise TokenError(f"no token named {name!r} (or it is revoked already)")
        before = TokenInfo.of(row).journaled()
        revoked_at = now or utcnow()
        store.revoke(row, at=revoked_at, by=origin.actor)
        info = TokenInfo.of(row)
        record(
            uow,
            Action.API_TOKEN_REVOKED,
            row.id,
            project_id=None,
            before=before,
            after=Revocation(revoked_at=revoked_at.isoformat()),
        )
    return info


async def listing(database: Database, *, include_revoked: bool = False) -> Sequence[TokenInfo]:
    async with database.read() as session:
        rows = await store.listing(session, include_revoked=include_revoked)
    return [TokenInfo.of(row) for row in rows]


class ApiTokens:
    """Checks API tokens against the table: one indexed read per request, nothing cached."""

    def __init__(self, database: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self._clock = clock

    async def principal(self, token: str) -> Principal:
        """The principal a token acts as, or Unauthenticated saying why not."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise Unauthenticated(
                "the bearer token starts with mlc_ but is not an API token"
                " (mlc_<16 hex digits>_<43-character secret>)"
            )
        async with self.database.read() as session:
            row = await store.by_public_id(session, match["public_id"])
        matches = secret_matches(match["secret"], row.secret_sha256 if row is not None else None)
        if row is None or not matches:
            raise Unauthenticated("the API token is not valid (unknown, or a wrong secret)")
        if row.revoked_at is not None:
            raise Unauthenticated(f"the API token {row.name!r} was revoked")
        if row.expires_at <= self._clock():
            raise Unauthenticated(f"the API token {row.name!r} has expired")
        return Principal(
            subject=row.subject,
            method=Method.API_TOKEN,
            name=row.subject,
            token=TokenGrant(name=row.name, project=row.project, role=row.role),
        )
