"""Browser login: the authorization code flow with PKCE (RFC 7636, S256) at the OIDC provider.

``begin`` makes the provider's authorization URL and the ``PendingLogin`` (state, nonce, PKCE
verifier, return path) that the edge keeps in a short-lived cookie of the browser that started:
the callback must come back to that browser, with that state, or it is refused, so a code or a
callback URL taken to another browser is worthless. ``finish`` exchanges the code (once: the
provider refuses a used code) and validates the ID token with the same keys, issuer checks and
claim mapping as bearer tokens (auth/oidc.py), its audience being the client id and its nonce
this login's. No web framework here: the edge hands in the parameters and the cookie's value.
"""

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

from mlcatalog.auth.oidc import (
    ProviderUnavailable,
    TokenValidator,
    Unauthenticated,
    is_secure_url,
)
from mlcatalog.auth.principal import Principal
from mlcatalog.settings import AuthSettings

MAX_RETURN_PATH = 2000  # characters of a `next` path
MAX_PENDING = 4096  # characters of the pending login's cookie


class InvalidReturnPath(ValueError):
    """A `next` that is not a path on this server: following it would be an open redirect."""


def return_path(value: str | None, default: str) -> str:
    """``value`` when it is a path on this server (``/…``), ``default`` when it is empty;
    anything a browser could read as another site (``//evil``, ``/\\evil``, ``https://…``) is
    refused."""
    if not value:
        return default
    if (
        len(value) > MAX_RETURN_PATH
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    ):
        raise InvalidReturnPath(
            f"`next` must be a path on this server, such as /graphql, of at most"
            f" {MAX_RETURN_PATH} characters"
        )
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        raise InvalidReturnPath("`next` must be a path on this server, such as /graphql")
    return value


@dataclass(frozen=True)
class PendingLogin:
    """What a login's callback must find again, kept in the browser that started the login."""

    state: str
    nonce: str
    verifier: str  # the PKCE code verifier: only its S256 challenge went to the provider
    next: str

    @classmethod
    def new(cls, next_path: str) -> "PendingLogin":
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),  # 64 characters: RFC 7636 asks for 43 to 128
            next=next_path,
        )

    def encode(self) -> str:
        return base64.urlsafe_b64encode(json.dumps(asdict(self)).encode()).decode()

    @classmethod
    def decode(cls, value: str) -> "PendingLogin":
        refused = Unauthenticated(
            "this browser's login cookie is not one this server made: start again at /auth/login"
        )
        if len(value) > MAX_PENDING:
            raise refused
        try:
            data = json.loads(base64.urlsafe_b64decode(value.encode()))
        except (ValueError, binascii.Error, RecursionError):
            raise refused from None
        fields = ("state", "nonce", "verifier", "next")
        if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in fields):
            raise refused
        return cls(**{f: data[f] for f in fields})


class LoginFlow:
    """The authorization code flow for this app's client; shares the bearer tokens' validator,
    so the provider's discovery document and keys are read once for both."""

    def __init__(self, settings: AuthSettings, validator: TokenValidator) -> None:
        if settings.client_id is None:
            raise ValueError("a LoginFlow needs auth.client_id")
        self.client_id: str = settings.client_id
        self.client_secret = settings.client_secret
        self.scope = " ".join(settings.login_scopes)
        self.validator = validator

    async def begin(self, *, redirect_uri: str, next_path: str) -> tuple[str, PendingLogin]:
        """The provider's authorization URL to send the browser to, and what to keep in it."""
        endpoint = await self._endpoint("authorization_endpoint")
        pending = PendingLogin.new(next_path)
        url: str = prepare_grant_uri(
            endpoint,
            self.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.scope,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256",
        )
        return url, pending

    async def finish(
        self, pending: PendingLogin, *, state: str, code: str, redirect_uri: str
    ) -> Principal:
        """The principal of a login that came back with ``code``, or Unauthenticated saying why
        not: another login's state, a code the provider refuses, an ID token that fails a check."""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise Unauthenticated(
                "the login's state does not match this browser's: start again at /auth/login"
            )
        endpoint = await self._endpoint("token_endpoint")
        body: str = prepare_token_request(
            "authorization_code",
            redirect_uri=redirect_uri,
            code=code,
            code_verifier=pending.verifier,
            **({} if self.client_secret else {"client_id": self.client_id}),
        )
        tokens = await self._token_response(endpoint, body)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated("the provider answered the login without an ID token")
        return await self.validator.id_token_principal(
            id_token, client_id=self.client_id, nonce=pending.nonce
        )

    async def _endpoint(self, name: str) -> str:
        endpoint = (await self.validator.metadata()).get(name)
        if not isinstance(endpoint, str):
            raise ProviderUnavailable(f"the provider's discovery document has no {name}")
        if self.validator.require_https and not is_secure_url(endpoint):
            # The code, the PKCE verifier and the client secret would cross the network in clear.
            raise ProviderUnavailable(f"the provider's {name} is not https: {endpoint[:200]}")
        return endpoint

    async def _token_response(self, endpoint: str, body: str) -> dict[str, Any]:
        auth = httpx.Auth()  # a public client: no client authentication
        if self.client_secret is not None:
            # client_secret_basic (RFC 6749 2.3.1): both form-encoded before Basic's base64.
            auth = httpx.BasicAuth(
                quote(self.client_id, safe=""),
                quote(self.client_secret.get_secret_value(), safe=""),
            )
        try:
            response = await self.validator.http.post(
                endpoint,
                content=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                auth=auth,
            )
            if response.status_code >= 500:
                response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderUnavailable(
                f"the provider's token endpoint could not be read ({endpoint}): {error}"
            ) from None
        if not isinstance(answer, dict):
            raise ProviderUnavailable("the provider's token endpoint answered no JSON object")
        if response.status_code != 200:
            reason, description = answer.get("error"), answer.get("error_description")
            raise Unauthenticated(
                f"the provider refused the login's code ({str(reason)[:50]}: "
                f"{str(description)[:200]}): start again at /auth/login"
            )
        return answer
