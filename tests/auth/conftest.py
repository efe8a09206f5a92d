"""A real OIDC provider (mock-oauth2-server) and tokens from its token endpoint."""

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mlcatalog.settings import AuthSettings
from tests.realservers import OidcServer, oidc_or_skip

AUDIENCE = "mlcatalog"
ISSUER = "mlcatalog"  # the issuer id: its issuer is {url}/mlcatalog
FAR_PAST = 946684800  # 2000-01-01
FAR_FUTURE = 4102444800  # 2100-01-01

ALICE = {
    "sub": "alice",
    "aud": [AUDIENCE],
    "name": "Alice Example",
    "email": "alice@example.org",
    "email_verified": True,
    "groups": ["ml-team", "auditors"],
}

# The provider's token endpoint picks the claims by the requested scope (its requestMappings);
# a claim given here replaces the one the server would set (iss, exp, nbf).
TOKEN_CALLBACKS: list[dict[str, object]] = [
    {
        "issuerId": ISSUER,
        "tokenExpiry": 600,
        "requestMappings": [
            {"requestParam": "scope", "match": "expired", "claims": {**ALICE, "exp": FAR_PAST}},
            {"requestParam": "scope", "match": "future", "claims": {**ALICE, "nbf": FAR_FUTURE}},
            {
                "requestParam": "scope",
                "match": "other-audience",
                "claims": {**ALICE, "aud": ["another-api"]},
            },
            {
                "requestParam": "scope",
                "match": "unverified-email",
                "claims": {**ALICE, "email_verified": False},
            },
            # Several audiences, issued to another client (azp), to this API, or to one client.
            {
                "requestParam": "scope",
                "match": "dashboard-for-several",
                "claims": {**ALICE, "aud": [AUDIENCE, "another-api"], "azp": "dashboard"},
            },
            {
                "requestParam": "scope",
                "match": "us-for-several",
                "claims": {**ALICE, "aud": [AUDIENCE, "another-api"], "azp": AUDIENCE},
            },
            {
                "requestParam": "scope",
                "match": "dashboard-for-us",
                "claims": {**ALICE, "aud": [AUDIENCE], "azp": "dashboard"},
            },
            # The JOSE header's `typ`: an RFC 9068 access token, and a logout token.
            {"requestParam": "scope", "match": "at-jwt", "claims": ALICE, "typeHeader": "at+jwt"},
            {
                "requestParam": "scope",
                "match": "logout",
                "claims": ALICE,
                "typeHeader": "logout+jwt",
            },
            {"requestParam": "scope", "match": "*", "claims": ALICE},
        ],
    },
    # Another issuer on the same server: its own key, its own `iss`.
    {
        "issuerId": "elsewhere",
        "requestMappings": [
            {"requestParam": "scope", "match": "*", "claims": {"sub": "mallory", "aud": [AUDIENCE]}}
        ],
    },
    # Tokens that claim the mlcatalog issuer but are signed with this issuer's key (kid "rotated"):
    # a key mlcatalog's JWKS does not publish until the rotation test serves it there.
    {
        "issuerId": "rotated",
        "requestMappings": [
            {
                "requestParam": "scope",
                "match": "*",
                "claims": {"sub": "bob", "aud": [AUDIENCE], "iss": "{url}/" + ISSUER},
            }
        ],
    },
]


@dataclass
class Provider:
    server: OidcServer

    @property
    def issuer(self) -> str:
        return self.server.issuer(ISSUER)

    def settings(self, **changes: Any) -> AuthSettings:
        return AuthSettings(issuer=self.issuer, audience=AUDIENCE, **changes)

    def jwks(self) -> dict[str, Any]:
        document: dict[str, Any] = httpx.get(f"{self.issuer}/jwks").json()
        return document

    def token(self, scope: str = "catalog", issuer_id: str = ISSUER) -> str:
        """An access token from the provider's token endpoint (client credentials)."""
        response = httpx.post(
            f"{self.server.url}/{issuer_id}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "pipeline",
                "client_secret": "secret",
                "scope": scope,
            },
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


@pytest.fixture(scope="session")
def oidc_server() -> Iterator[OidcServer]:
    server = oidc_or_skip(TOKEN_CALLBACKS)
    yield server
    server.stop()


@pytest.fixture
def provider(oidc_server: OidcServer) -> Provider:
    return Provider(oidc_server)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def with_header(token: str, **header: Any) -> tuple[str, str]:
    """The token's payload with a new header: (encoded header, encoded payload)."""
    old = json.loads(unb64(token.split(".")[0]))
    return b64(json.dumps({**old, **header}).encode()), token.split(".")[1]
