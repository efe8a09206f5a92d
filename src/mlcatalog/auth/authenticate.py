"""From a request's Authorization header (or session cookie) to a Principal, by the settings.

With an issuer, every request needs ``Authorization: Bearer <jwt>`` from that provider. Without
one (never in production), every request is the local development user. Either way, a bearer
credential that starts with ``mlc_`` is an API token (auth/tokens.py) and must verify as one:
an invalid one is refused, never taken for the development user. With browser login on (an
issuer and a client id), a request without an Authorization header may carry a session cookie
instead (auth/sessions.py); an Authorization header always wins over the cookie.
"""

import logging
from typing import Protocol

from mlcatalog.auth.login import LoginFlow
from mlcatalog.auth.oidc import TokenValidator, Unauthenticated, is_secure_url
from mlcatalog.auth.principal import Principal
from mlcatalog.auth.sessions import Sessions
from mlcatalog.auth.tokens import ApiTokens, looks_like_token
from mlcatalog.settings import Settings
from mlcatalog.store.database import Database

log = logging.getLogger("mlcatalog.auth")


class UnsafeProduction(RuntimeError):
    """Production settings that would let a caller act as someone else: the server refuses to
    start."""


class NoIssuerInProduction(UnsafeProduction):
    """Production without an identity provider would let anyone act as the development user."""


class InsecureIssuerInProduction(UnsafeProduction):
    """Keys read over plain http could be replaced on the way, and with them every identity."""


class Authenticator(Protocol):
    async def principal(self, authorization: str | None, session: str | None = None) -> Principal:
        """The caller of a request with this Authorization header and session cookie (the edge
        passes the cookie only when browser login is on)."""

    def announce(self) -> None:
        """Log, once at start, who requests will act as."""

    async def close(self) -> None: ...


class DevelopmentUser:
    """Every request is one local user, whatever it sends."""

    def __init__(self, name: str) -> None:
        self.user = Principal.development(name)

    async def principal(self, authorization: str | None, session: str | None = None) -> Principal:
        return self.user

    def announce(self) -> None:
        log.warning(
            "NO AUTHENTICATION: no identity provider is configured (MLCATALOG_AUTH__ISSUER), so"
            " every request acts as the development user %r. Anyone who reaches this port can"
            " read and change everything.",
            self.user.subject,
        )

    async def close(self) -> None:
        return None


class BearerTokens:
    """Every request carries a bearer JWT from the configured provider."""

    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    async def principal(self, authorization: str | None, session: str | None = None) -> Principal:
        return await self.validator.principal(bearer_token(authorization))

    def announce(self) -> None:
        log.info("requests need bearer tokens from %s", self.validator.issuer)

    async def close(self) -> None:
        await self.validator.close()


class WithApiTokens:
    """API tokens first (a bearer credential with their prefix), everything else as ``inner``."""

    def __init__(self, inner: Authenticator, tokens: ApiTokens) -> None:
        self.inner = inner
        self.tokens = tokens

    async def principal(self, authorization: str | None, session: str | None = None) -> Principal:
        if authorization is not None and looks_like_token(authorization):
            # Meant as an API token, in whatever form it came (another scheme, a tab, no
            # scheme): it verifies as one or is refused, never taken for the development user.
            return await self.tokens.principal(bearer_token(authorization))
        return await self.inner.principal(authorization)

    def announce(self) -> None:
        self.inner.announce()
        log.info("API tokens (mlc_…) are accepted as bearer tokens")

    async def close(self) -> None:
        await self.inner.close()


class WithSessions:
    """Without an Authorization header, the session cookie's user; else as ``inner``. A cookie
    that is not a live session is refused, never passed on (to the development user or a
    bearer challenge): the browser must log in again."""

    def __init__(self, inner: Authenticator, sessions: Sessions, login: LoginFlow) -> None:
        self.inner = inner
        self.sessions = sessions
        self.login = login  # the routes that start and end sessions (api/login.py) use it

    async def principal(self, authorization: str | None, session: str | None = None) -> Principal:
        if authorization is None and session is not None:
            return await self.sessions.principal(session)
        return await self.inner.principal(authorization)

    def announce(self) -> None:
        self.inner.announce()
        log.info("browsers may log in at /auth/login (client %s)", self.login.client_id)

    async def close(self) -> None:
        await self.inner.close()


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750), or why there is none."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated(
            "this API needs a bearer token: send `Authorization: Bearer <token>` from the"
            " organisation's identity provider"
        )
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthenticated("the Authorization header must be `Bearer <token>`")
    return parts[1]


def authenticator_for(settings: Settings, database: Database | None = None) -> Authenticator:
    """The settings' authenticator; with ``database``, API tokens are accepted too, and session
    cookies when browser login is configured."""
    refuse_unsafe_production(settings)
    if settings.auth.issuer is None:
        dev = DevelopmentUser(settings.auth.dev_user)
        return dev if database is None else WithApiTokens(dev, ApiTokens(database))
    validator = TokenValidator(settings.auth, require_https=settings.environment == "production")
    bearer: Authenticator = BearerTokens(validator)
    if database is None:
        return bearer
    bearer = WithApiTokens(bearer, ApiTokens(database))
    if not settings.auth.browser_login:
        return bearer
    sessions = Sessions(database, hours=settings.auth.session_hours)
    return WithSessions(bearer, sessions, LoginFlow(settings.auth, validator))


def refuse_unsafe_production(settings: Settings) -> None:
    if settings.environment != "production":
        return
    issuer = settings.auth.issuer
    if issuer is None:
        raise NoIssuerInProduction(
            "MLCATALOG_ENVIRONMENT=production needs an identity provider: set"
            " MLCATALOG_AUTH__ISSUER and MLCATALOG_AUTH__AUDIENCE (without them every request"
            " would act as the development user)"
        )
    if not is_secure_url(issuer):
        raise InsecureIssuerInProduction(
            f"MLCATALOG_ENVIRONMENT=production needs an https issuer, not {issuer!r}: its keys"
            " read over http could be replaced on the way (http is allowed to loopback only)"
        )
