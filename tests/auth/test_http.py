"""Bearer tokens at the HTTP edge: the caller becomes the actor, and anonymous or bad tokens get a
coded 401 with a challenge; without an issuer, development is one loud local user."""

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlcatalog.app import NotMigrated, create_app
from mlcatalog.auth.authenticate import (
    DevelopmentUser,
    InsecureIssuerInProduction,
    NoIssuerInProduction,
)
from mlcatalog.settings import AuthSettings, SearchSettings, Settings
from tests.auth.conftest import ME, Client, Provider, with_header


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unauthenticated(response: httpx.Response, challenge: str) -> str:
    """A coded 401 with the RFC 6750 challenge and no data; returns the message."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == challenge
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    return str(error["message"])


async def test_the_token_s_subject_is_the_caller_and_the_journal_names_it(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.settings())
    headers = bearer(provider.token())
    me = await http.post("/graphql", json=ME, headers=headers)
    assert me.json() == {"data": {"me": {"name": "alice"}}}
    created = await http.post(
        "/graphql",
        json={"query": 'mutation { createProject(input: {name: "vision"}) { project { name } } }'},
        headers=headers,
    )
    assert "errors" not in created.json(), created.json()
    log = await http.post(
        "/graphql",
        json={"query": "{ auditLog { edges { node { actor action } } } }"},
        headers=headers,
    )
    entries = [edge["node"] for edge in log.json()["data"]["auditLog"]["edges"]]
    assert entries == [{"actor": "alice", "action": "project.created"}]


async def test_a_request_without_a_token_is_unauthenticated(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.settings())
    message = unauthenticated(await http.post("/graphql", json=ME), "Bearer")
    assert "Authorization: Bearer <token>" in message


@pytest.mark.parametrize(
    "header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "Bearer two tokens", "token"]
)
async def test_a_malformed_authorization_header_is_unauthenticated(
    client: Client, provider: Provider, header: str
) -> None:
    http = await client(provider.settings())
    response = await http.post("/graphql", json=ME, headers={"Authorization": header})
    assert "must be `Bearer <token>`" in unauthenticated(response, 'Bearer error="invalid_token"')


@pytest.mark.parametrize(
    ("scope", "reason"),
    [("expired", "expired"), ("future", "not valid yet"), ("other-audience", "not meant")],
)
async def test_an_invalid_token_is_unauthenticated_with_its_reason(
    client: Client, provider: Provider, scope: str, reason: str
) -> None:
    http = await client(provider.settings())
    response = await http.post("/graphql", json=ME, headers=bearer(provider.token(scope)))
    assert reason in unauthenticated(response, 'Bearer error="invalid_token"')


async def test_an_unsigned_token_is_unauthenticated(client: Client, provider: Provider) -> None:
    http = await client(provider.settings())
    header, payload = with_header(provider.token(), alg="none")
    response = await http.post("/graphql", json=ME, headers=bearer(f"{header}.{payload}."))
    assert "'none' are not accepted" in unauthenticated(response, 'Bearer error="invalid_token"')


async def test_a_refusal_speaks_the_client_s_media_type(client: Client, provider: Provider) -> None:
    http = await client(provider.settings())
    response = await http.post(
        "/graphql", json=ME, headers={"Accept": "application/graphql-response+json"}
    )
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    unauthenticated(response, "Bearer")


async def test_the_graphiql_page_needs_no_token(client: Client, provider: Provider) -> None:
    http = await client(provider.settings())
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "<html" in page.text.lower()


async def test_production_with_an_issuer_refuses_anonymous_requests(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.settings(), environment="production")
    unauthenticated(await http.post("/graphql", json=ME), "Bearer")
    me = await http.post("/graphql", json=ME, headers=bearer(provider.token()))
    assert me.json() == {"data": {"me": {"name": "alice"}}}


def test_production_without_an_issuer_refuses_to_start() -> None:
    with pytest.raises(NoIssuerInProduction, match="MLCATALOG_AUTH__ISSUER"):
        create_app(Settings(environment="production"))


def test_production_with_an_issuer_over_plain_http_refuses_to_start() -> None:
    auth = AuthSettings(issuer="http://login.example.org/realms/ml", audience="mlcatalog")
    with pytest.raises(InsecureIssuerInProduction, match="needs an https issuer"):
        create_app(Settings(environment="production", auth=auth))


class Closing(DevelopmentUser):
    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_a_start_that_fails_closes_what_the_app_opened(tmp_path: Path) -> None:
    authenticator = Closing("dev")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/unmigrated.db",
        environment="test",
        search=SearchSettings(serve_indexer=False),
    )
    app = create_app(settings, authenticator=authenticator)
    with pytest.raises(NotMigrated):
        async with app.router.lifespan_context(app):
            pass
    assert authenticator.closed


async def test_without_an_issuer_everyone_is_the_development_user_and_the_start_says_so(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mlcatalog.auth")
    http = await client(AuthSettings(dev_user="dev"), environment="development")
    [warning] = [r for r in caplog.records if r.name == "mlcatalog.auth"]
    assert warning.levelno == logging.WARNING
    assert "NO AUTHENTICATION" in warning.getMessage()
    # A token, even a bad one, changes nothing: there is no provider to check it against.
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        me: Any = (await http.post("/graphql", json=ME, headers=headers)).json()
        assert me == {"data": {"me": {"name": "dev"}}}
