"""A real OIDC provider (mock-oauth2-server) and tokens from its token endpoint."""

import base64
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mlcatalog.app import create_app
from mlcatalog.settings import AuthSettings, SearchSettings, ServerSettings, Settings
from tests.policies import admins_policy
from tests.realservers import OidcServer, oidc_or_skip

AUDIENCE = "mlcatalog"
CLIENT_ID = "mlcatalog-web"  # the browser login's client: its ID tokens name it in `aud`
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
            # A browser login's token request (the code grant) carries no scope.
            {
                "requestParam": "grant_type",
                "match": "authorization_code",
                "claims": {**ALICE, "aud": [CLIENT_ID]},
            },
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
            # An ID token for this app's client and another, issued to that other client.
            {
                "requestParam": "scope",
                "match": "id-token-for-another",
                "claims": {
                    **ALICE,
                    "aud": [CLIENT_ID, "another-app"],
                    "azp": "another-app",
                    "nonce": "n-1",
                },
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
        changes.setdefault("policy_dir", admins_policy())
        return AuthSettings(issuer=self.issuer, audience=AUDIENCE, **changes)

    def login_settings(self, **changes: Any) -> AuthSettings:
        """With browser login on: this app's client at the provider."""
        return self.settings(client_id=CLIENT_ID, client_secret="secret", **changes)

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


ME = {"query": "{ me { name } }"}


class AppClient(httpx.AsyncClient):
    """A client of one app, in process, over https (a Secure cookie goes back over https only);
    ``app`` for what a test reads behind the API."""

    def __init__(self, app: Starlette) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url="https://testserver")
        self.app = app


Client = Callable[..., Awaitable[AppClient]]


@pytest.fixture
async def client(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Client]:
    """Opens the app (with its lifespan) on a fresh catalog with the given settings."""
    async with AsyncExitStack() as stack:

        async def open_client(
            auth: AuthSettings,
            environment: str = "test",
            server: ServerSettings | None = None,
        ) -> AppClient:
            path = tmp_path / f"catalog-{len(stack._exit_callbacks)}.db"
            shutil.copy(sqlite_template, path)
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{path}",
                environment=environment,  # type: ignore[arg-type]
                auth=auth,
                server=server or ServerSettings(),
                search=SearchSettings(serve_indexer=False),
            )
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(AppClient(app))

        yield open_client
