"""Bearer JWTs and login ID tokens from the configured OIDC provider, validated into a Principal.

The provider's keys come from its discovery document's ``jwks_uri`` and are cached; a token
signed by a key id the cache lacks fetches them again once (the provider rotated its keys), at
most every ``jwks_refetch_seconds``. A token passes only when its signature verifies with one of
the configured asymmetric algorithms (never ``none``, never HMAC), its header does not type it
as another kind of token, and its issuer, audience, authorized party, expiry and
not-before hold, within the leeway. Every refusal is an ``Unauthenticated`` that says why. No
web framework here: the edge hands in the token and gets a Principal.
"""

import asyncio
import base64
import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
from joserfc import jwk, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidTokenError,
    JoseError,
    MissingClaimError,
)

from mlcatalog.auth.principal import Method, Principal
from mlcatalog.settings import AuthSettings

Key = jwk.RSAKey | jwk.ECKey | jwk.OKPKey

# Until the keys were read once, a failed attempt is retried this soon (then jwks_refetch_seconds).
FIRST_FETCH_RETRY_SECONDS = 1.0


class Unauthenticated(Exception):
    """The caller is not who it claims, or did not say: UNAUTHENTICATED, with the reason."""

    code = "UNAUTHENTICATED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderUnavailable(Unauthenticated):
    """The provider's discovery document or keys could not be read: no token can be checked."""


# Subjects the catalog gives its own principals (API tokens, the CLI): no provider's user may
# take one, or the journal could not tell who acted.
RESERVED_SUBJECTS = ("token:", "cli:")

MAX_TOKEN = 16 * 1024  # characters of a bearer token: identity providers' tokens are a few KiB


class TokenType(NamedTuple):
    """The JOSE ``typ`` values a kind of token may carry, compared without case or the optional
    "application/" (RFC 7515); a token without ``typ`` passes."""

    name: str
    accepted: frozenset[str]


# An access token: RFC 9068's at+jwt, or plain JWT (what most providers put in every token they
# sign). A token that types itself as anything else (a logout token's logout+jwt, a security
# event's secevent+jwt, an ID token's id_token+jwt…) is not meant for an API.
ACCESS_TOKEN = TokenType("an access token", frozenset({"jwt", "at+jwt"}))
# A login's ID token: plain JWT, or OIDC's id_token+jwt; an access token (at+jwt) proves no login.
ID_TOKEN = TokenType("an ID token", frozenset({"jwt", "id_token+jwt"}))


def is_secure_url(url: str) -> bool:
    """https, or http to this machine's loopback (traffic that never leaves the host)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or parts.hostname is None:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def unverified_header(token: str, what: str = "the bearer token") -> dict[str, Any]:
    """The JOSE header of a compact JWS, before anything about it is trusted."""
    if len(token) > MAX_TOKEN:
        raise Unauthenticated(f"{what} is longer than {MAX_TOKEN} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated(f"{what} is not a JWT (three dot-separated parts)")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, RecursionError):
        raise Unauthenticated(f"{what}'s header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise Unauthenticated(f"{what}'s header is not a JSON object")
    return header


class TokenValidator:
    """Validates bearer JWTs for one issuer and audience; shared by every request of a process."""

    def __init__(
        self,
        settings: AuthSettings,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        *,
        require_https: bool = False,
    ) -> None:
        """``require_https`` (production): the discovery document and the keys are read only
        over https (or loopback), or the keys that every check trusts could be changed on the
        way; ``refuse_unsafe_production`` refuses an http issuer at start already."""
        if settings.issuer is None or settings.audience is None:
            raise ValueError("a TokenValidator needs auth.issuer and auth.audience")
        self.settings = settings
        self.issuer: str = settings.issuer
        self.audience: str = settings.audience
        # The parties a token with several audiences may have been issued to (its azp).
        self.parties = frozenset({settings.audience, *settings.authorized_parties})
        self.algorithms = list(settings.algorithms)
        self.require_https = require_https
        # Opened at the first fetch, so a validator that never fetched holds nothing to close
        # (an app whose start fails after building it leaks no connection pool).
        self._own_client = client is None
        self._client = client
        self._clock = clock
        self._metadata: dict[str, Any] | None = None  # the discovery document, once read
        self._keys: dict[str | None, Key] = {}
        self._fetched_at: float | None = None  # the last fetch that succeeded
        self._attempted_at: float | None = None  # the last attempt, failed or not
        self._failure: str | None = None
        self._lock = asyncio.Lock()
        self.jwks_fetches = 0
        self._claims = self._registry(self.audience)

    def _registry(self, audience: str, **more: Any) -> jwt.JWTClaimsRegistry:
        """The claims every token must have: this issuer's, for ``audience``, not expired."""
        return jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self.settings.leeway_seconds,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            **more,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The client that talks to the provider, opened at its first use (the login flow's
        token requests use it too)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.http_timeout_seconds)
        return self._client

    async def close(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def principal(self, token: str) -> Principal:
        """The principal a bearer token stands for, or Unauthenticated saying why not."""
        claims = await self._verified(
            token, self._claims, "the bearer token", types=ACCESS_TOKEN, parties=self.parties
        )
        return self._principal(claims)

    async def id_token_principal(self, token: str, *, client_id: str, nonce: str) -> Principal:
        """The principal of a login's ID token: the same checks and claims as a bearer token's,
        but meant for ``client_id`` (its azp, when it names several audiences) and carrying the
        login's ``nonce`` (OIDC Core 3.1.3.7)."""
        registry = self._registry(client_id, nonce={"essential": True, "value": nonce})
        claims = await self._verified(
            token,
            registry,
            "the ID token",
            types=ID_TOKEN,
            parties=frozenset({client_id}),
            audience=client_id,
        )
        return self._principal(claims, Method.SESSION, "the ID token")

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read once (the keys' fetch reads it too)."""
        metadata = self._metadata
        if metadata is None:
            async with self._lock:
                metadata = self._metadata or await self._discover()
        return metadata

    async def _verified(
        self,
        token: str,
        registry: jwt.JWTClaimsRegistry,
        what: str,
        *,
        types: TokenType,
        parties: frozenset[str],
        audience: str | None = None,
    ) -> dict[str, Any]:
        header = unverified_header(token, what)
        typ = header.get("typ")
        if typ is not None and (
            not isinstance(typ, str)
            or typ.lower().removeprefix("application/") not in types.accepted
        ):
            raise Unauthenticated(f"{what} is not {types.name} (its type is {str(typ)[:50]!r})")
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise Unauthenticated(
                f"tokens signed with {algorithm!r} are not accepted"
                f" (accepted: {', '.join(self.algorithms)})"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated(f"{what}'s key id (kid) is not a string")
        key = await self._key(kid, what)
        try:
            decoded = jwt.decode(token, key, algorithms=self.algorithms)
        except BadSignatureError:
            raise Unauthenticated(f"{what}'s signature does not verify") from None
        except JoseError as error:
            raise Unauthenticated(f"{what} is malformed: {error.description}") from None
        audience = audience or self.audience
        self._validate(decoded.claims, registry, what, audience)
        self._check_party(decoded.claims, parties, what, audience)
        return decoded.claims

    def _validate(
        self, claims: dict[str, Any], registry: jwt.JWTClaimsRegistry, what: str, audience: str
    ) -> None:
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Unauthenticated(f"{what} has expired") from None
        except MissingClaimError as error:
            raise Unauthenticated(f"{what} lacks a claim: {error.description}") from None
        except InvalidClaimError as error:
            claim = error.claim
            if claim == "iss":
                message = f"{what} was not issued by {self.issuer}"
            elif claim in ("nbf", "iat"):
                message = f"{what} is not valid yet (nbf)"
            elif claim == "aud":
                message = f"{what} is not meant for this API (audience {audience})"
            elif claim == "nonce":
                message = f"{what} was not issued for this login (its nonce differs)"
            else:
                message = f"{what}'s {claim!r} claim is invalid"
            raise Unauthenticated(message) from None
        except InvalidTokenError:
            raise Unauthenticated(f"{what} is not valid yet (nbf)") from None
        except JoseError as error:
            raise Unauthenticated(f"{what} is invalid: {error.description}") from None

    def _check_party(
        self, claims: dict[str, Any], parties: frozenset[str], what: str, audience: str
    ) -> None:
        """A token for several audiences that names the party it was issued to (azp) must name
        one of ``parties`` (OpenID Connect Core 3.1.3.7): a token meant for another client, which
        only lists this API among others, does not act here."""
        audiences, party = claims.get("aud"), claims.get("azp")
        if party is None or not isinstance(audiences, list) or len(audiences) < 2:
            return
        if party not in parties:
            allow = (
                "; allow that client in MLCATALOG_AUTH__AUTHORIZED_PARTIES"
                if parties is self.parties
                else ""
            )
            raise Unauthenticated(
                f"{what} was issued to {str(party)[:100]!r}, not to this API ({audience}){allow}"
            )

    def _principal(
        self,
        claims: dict[str, Any],
        method: Method = Method.BEARER,
        what: str = "the bearer token",
    ) -> Principal:
        s = self.settings
        subject = claims.get(s.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated(f"{what} names no subject ({s.subject_claim!r} claim)")
        verified = claims.get("email_verified")
        if s.subject_claim == "email" and not (verified is True or verified == "true"):
            # Many providers let a user change their email: unverified, it could name anyone.
            raise Unauthenticated(
                f"{what}'s email is not verified (email_verified), so it cannot name the caller"
            )
        if subject.startswith(RESERVED_SUBJECTS) or subject == s.dev_user:
            # The journal would mistake this user for an API token, the CLI or the dev user.
            raise Unauthenticated(f"{what}'s subject {subject[:50]!r} is reserved")
        groups = claims.get(s.groups_claim)
        if isinstance(groups, str):
            groups = [groups]
        return Principal(
            subject=subject,
            method=method,
            name=_text(claims.get(s.name_claim)),
            email=_text(claims.get(s.email_claim)),
            groups=tuple(g for g in groups if isinstance(g, str))
            if isinstance(groups, list)
            else (),
        )

    async def _key(self, kid: str | None, what: str) -> Key:
        if not self._has(kid):
            async with self._lock:  # a burst of tokens with a new key id fetches the keys once
                if not self._has(kid) and self._may_fetch():
                    await self._fetch_keys()
        if self._fetched_at is None:
            raise ProviderUnavailable(self._failure or "the provider's keys could not be read")
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise Unauthenticated(f"{what} names no key id (kid)")
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated(f"{what}'s key id {kid!r} is not one of the provider's")
        return key

    def _has(self, kid: str | None) -> bool:
        return kid in self._keys if kid is not None else bool(self._keys)

    def _may_fetch(self) -> bool:
        """Whether to ask the provider now: failed or not, attempts are spaced out, so neither
        made-up key ids nor a provider that is down turn each request into a request to it."""
        if self._attempted_at is None:
            return True
        wait = (
            FIRST_FETCH_RETRY_SECONDS
            if self._fetched_at is None
            else self.settings.jwks_refetch_seconds
        )
        return self._clock() - self._attempted_at >= wait

    async def _fetch_keys(self) -> None:
        self._attempted_at = self._clock()
        try:
            await self._read_keys()
        except ProviderUnavailable as error:
            self._failure = error.message
            raise

    async def _discover(self) -> dict[str, Any]:
        """Read the discovery document; the caller holds the lock."""
        metadata = await self._get_json(
            self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        if metadata.get("issuer") != self.issuer:
            raise ProviderUnavailable(
                f"the provider's discovery document names issuer {metadata.get('issuer')!r},"
                f" not {self.issuer!r}"
            )
        if not isinstance(metadata.get("jwks_uri"), str):
            raise ProviderUnavailable("the provider's discovery document has no jwks_uri")
        self._metadata = metadata
        return metadata

    async def _read_keys(self) -> None:
        metadata = self._metadata or await self._discover()
        document = await self._get_json(metadata["jwks_uri"])
        self.jwks_fetches += 1
        self._fetched_at = self._clock()
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ProviderUnavailable("the provider's key set has no list of keys")
        self._keys = signing_keys(document)

    async def _get_json(self, url: str) -> dict[str, Any]:
        if self.require_https and not is_secure_url(url):
            raise ProviderUnavailable(
                f"{url[:200]} is not https: the provider's keys could be changed on the way,"
                " so no token is accepted"
            )
        try:
            response = await self.http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderUnavailable(
                f"the identity provider could not be read ({url}): {error}"
            ) from None
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"the identity provider answered {url} with no JSON object")
        return document


def signing_keys(document: dict[str, Any]) -> dict[str | None, Key]:
    """The public signing keys of a JWKS by key id; keys for encryption or of unknown types skip."""
    keys: dict[str | None, Key] = {}
    for data in document.get("keys") or []:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        if data.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        try:
            key = jwk.import_key(data)
        except (JoseError, ValueError, KeyError, TypeError):
            continue  # a key we cannot read (an unknown curve…) must not break the others
        if isinstance(key, Key):
            keys[data.get("kid")] = key
    return keys


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
