"""API tokens: made once, kept as a hash, accepted as Bearer over HTTP with or without an OIDC
issuer, refused with a coded 401 when wrong, expired, revoked or malformed; made and revoked in
the journal."""

import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from mlcatalog.app import create_app
from mlcatalog.auth import tokens
from mlcatalog.auth.oidc import Unauthenticated
from mlcatalog.auth.principal import Method, TokenGrant
from mlcatalog.settings import AuthSettings, SearchSettings, Settings
from mlcatalog.store import journal, migrate
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.journal import Action, EntityType
from mlcatalog.store.rows import ApiTokenRow, JournalRow, utcnow
from tests.auth.conftest import Provider
from tests.conftest import Api

ME = {"query": "{ me { name } }"}
CREATE_PROJECT = {
    "query": 'mutation { createProject(input: {name: "vision"}) { project { name } } }'
}
CREATE_FRAUD = {"query": 'mutation { createProject(input: {name: "fraud"}) { project { name } } }'}
REGISTER = {
    "query": 'mutation { registerModel(input: {project: "fraud", name: "m"}) { model { name } } }'
}
AUDIT = {"query": "{ auditLog { edges { node { actor action entityType } } } }"}
Open = Callable[..., Awaitable[tuple[httpx.AsyncClient, Database]]]


async def make(database: Database, name: str = "ci", days: int = 90) -> tokens.Created:
    return await tokens.create(
        database,
        origin=Origin(actor="admin"),
        name=name,
        project="fraud",
        role="contributor",
        days=days,
        max_days=365,
    )


def subject(created: tokens.Created) -> str:
    """token:<name>#<public id>: the public id is the token's characters 4 to 20."""
    return f"token:{created.info.name}#{created.token[4:20]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: httpx.Response) -> str:
    """A coded 401 with an invalid_token challenge and no data; returns the message."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    return str(error["message"])


@pytest.fixture
async def open_app(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Open]:
    """The app over HTTP on a fresh SQLite catalog, and that catalog's database."""
    async with AsyncExitStack() as stack:

        async def open_client(auth: AuthSettings | None = None) -> tuple[Any, Database]:
            path = tmp_path / f"catalog-{len(stack._exit_callbacks)}.db"
            shutil.copy(sqlite_template, path)
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{path}",
                environment="test",
                auth=auth or AuthSettings(),
                search=SearchSettings(serve_indexer=False),
            )
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://testserver"
                )
            )
            database = Database(settings.database_url)
            stack.push_async_callback(database.dispose)
            return http, database

        yield open_client


# ---- over HTTP ----


async def test_a_token_acts_as_its_own_subject_and_the_journal_names_it(open_app: Open) -> None:
    http, database = await open_app()
    created = await make(database)
    headers = bearer(created.token)
    me = await http.post("/graphql", json=ME, headers=headers)
    assert me.json() == {"data": {"me": {"name": subject(created)}}}
    # The development user (no header) makes the token's project; the token, a contributor
    # there, registers a model in it but may not make projects.
    assert "errors" not in (await http.post("/graphql", json=CREATE_FRAUD)).json()
    made = await http.post("/graphql", json=REGISTER, headers=headers)
    assert "errors" not in made.json(), made.json()
    refused = (await http.post("/graphql", json=CREATE_PROJECT, headers=headers)).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    log = await http.post("/graphql", json=AUDIT)
    entries = [edge["node"] for edge in log.json()["data"]["auditLog"]["edges"]]
    made_by = {"actor": subject(created), "action": "model.registered", "entityType": "Model"}
    assert made_by in entries
    denied = {"actor": subject(created), "action": "write.denied", "entityType": "Project"}
    assert denied in entries


async def test_the_journal_names_the_token_client_and_request_of_a_change(open_app: Open) -> None:
    http, database = await open_app()
    created = await make(database)
    headers = bearer(created.token) | {
        "X-Request-ID": "pipeline-42",
        # Not ours to read: uvicorn applies it, and only from the proxies it trusts.
        "X-Forwarded-For": "203.0.113.9",
    }
    assert "errors" not in (await http.post("/graphql", json=CREATE_FRAUD)).json()
    made = await http.post("/graphql", json=REGISTER, headers=headers)
    assert "errors" not in made.json(), made.json()
    async with database.read() as session:
        entry = (await session.scalars(select(JournalRow).order_by(JournalRow.seq.desc()))).first()
    assert entry is not None and entry.action == Action.MODEL_REGISTERED
    # httpx's ASGI transport reports the client as 127.0.0.1, as uvicorn reports the peer.
    assert (
        entry.actor,
        entry.token_name,
        entry.auth_method,
        entry.client_address,
        entry.request_id,
    ) == (subject(created), "ci", "api-token", "127.0.0.1", "pipeline-42")
    # The development user (no header) reads the journal: a contributor's token may not.
    shown = await http.post(
        "/graphql",
        json={
            "query": "{ auditLog(first: 1) { edges { node { actor tokenName method clientAddress requestId } } } }"
        },
    )
    assert shown.json()["data"]["auditLog"]["edges"][0]["node"] == {
        "actor": subject(created),
        "tokenName": "ci",
        "method": "api-token",
        "clientAddress": "127.0.0.1",
        "requestId": "pipeline-42",
    }


async def test_a_token_works_beside_an_oidc_issuer(open_app: Open, provider: Provider) -> None:
    http, database = await open_app(provider.settings())
    created = await make(database)
    me = await http.post("/graphql", json=ME, headers=bearer(created.token))
    assert me.json() == {"data": {"me": {"name": subject(created)}}}
    jwt = await http.post("/graphql", json=ME, headers=bearer(provider.token()))
    assert jwt.json() == {"data": {"me": {"name": "alice"}}}


async def test_without_a_token_development_stays_the_development_user(open_app: Open) -> None:
    http, _ = await open_app()
    me = await http.post("/graphql", json=ME)
    assert me.json() == {"data": {"me": {"name": "local-dev"}}}


def _wrong_secret(token: str) -> str:
    last = "A" if token[-1] != "A" else "B"
    return token[:-1] + last


def _unknown_id(token: str) -> str:
    public_id = token[4:20]
    other = "0" * 16 if public_id != "0" * 16 else "1" * 16
    return token.replace(public_id, other)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_wrong_secret, "not valid"),
        (_unknown_id, "not valid"),
        (lambda token: token[:-1], "is not an API token"),  # a secret one character short
        (lambda token: "mlc_", "is not an API token"),
        (lambda token: "mlc_nothex0000000000_" + "a" * 43, "is not an API token"),
        (lambda token: token + " trailing", "must be `Bearer <token>`"),
    ],
    ids=["wrong-secret", "unknown-id", "short-secret", "prefix-only", "bad-id", "two-words"],
)
async def test_a_bad_token_is_refused_even_in_development(
    open_app: Open, change: Callable[[str], str], reason: str
) -> None:
    http, database = await open_app()  # no issuer: anything else would be the development user
    created = await make(database)
    response = await http.post("/graphql", json=ME, headers=bearer(change(created.token)))
    assert reason in refused(response)


@pytest.mark.parametrize(
    "header",
    ["Bearer\t{token}", "Token {token}", "{token}", "bearer  {token}"],
    ids=["tab", "other-scheme", "no-scheme", "two-spaces"],
)
async def test_a_revoked_token_in_any_form_is_refused_in_development(
    open_app: Open, header: str
) -> None:
    """Whatever the form, a credential meant as an API token never acts as the development user."""
    http, database = await open_app()
    created = await make(database)
    await tokens.revoke(database, origin=Origin(actor="admin"), name="ci")
    sent = {"Authorization": header.format(token=created.token)}
    response = await http.post("/graphql", json=ME, headers=sent)
    assert response.status_code == 401, response.text


def test_a_created_token_does_not_show_in_its_repr() -> None:
    created = tokens.Created(info=None, token="mlc_0123456789abcdef_secret")  # type: ignore[arg-type]
    assert "secret" not in repr(created)


async def test_an_expired_token_is_refused(open_app: Open) -> None:
    http, database = await open_app()
    created = await make(database)
    async with database.write_engine.begin() as connection:
        await connection.execute(
            update(ApiTokenRow).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await http.post("/graphql", json=ME, headers=bearer(created.token))
    assert "'ci' has expired" in refused(response)


async def test_a_revoked_token_is_refused_at_its_next_request(open_app: Open) -> None:
    http, database = await open_app()
    created = await make(database)
    headers = bearer(created.token)
    assert (await http.post("/graphql", json=ME, headers=headers)).status_code == 200
    await tokens.revoke(database, origin=Origin(actor="admin"), name="ci")
    assert "'ci' was revoked" in refused(await http.post("/graphql", json=ME, headers=headers))


# ---- in process, on both databases ----


async def test_only_the_hash_of_the_secret_is_stored(database: Database) -> None:
    created = await make(database)
    public_id, secret = created.token.removeprefix("mlc_").split("_", 1)
    async with database.read() as session:
        row = (await session.scalars(select(ApiTokenRow))).one()
    stored = [str(getattr(row, column.key)) for column in ApiTokenRow.__table__.columns]
    assert not any(secret in value or created.token in value for value in stored)
    assert row.secret_sha256 == tokens.secret_hash(secret)
    assert row.public_id == public_id
    assert (row.subject, row.project, row.role) == (f"token:ci#{public_id}", "fraud", "contributor")
    assert row.expires_at - row.created_at == timedelta(days=90)


async def test_a_token_verifies_to_a_principal_with_its_grant(database: Database) -> None:
    created = await make(database)
    principal = await tokens.ApiTokens(database).principal(created.token)
    assert principal.subject == subject(created) == created.info.subject
    assert principal.method == Method.API_TOKEN == "api-token"
    assert principal.token == TokenGrant(name="ci", project="fraud", role="contributor")


async def test_the_listing_shows_no_secret_and_hides_revoked_tokens(database: Database) -> None:
    first = await make(database, "ci")
    await make(database, "nightly")
    await tokens.revoke(database, origin=Origin(actor="admin"), name="nightly")
    listed = await tokens.listing(database)
    assert [info.name for info in listed] == ["ci"]
    secret = first.token.split("_", 2)[2]
    assert secret not in repr(listed) and tokens.secret_hash(secret) not in repr(listed)
    assert listed[0].prefix == first.token[:20]
    everything = await tokens.listing(database, include_revoked=True)
    assert [(info.name, info.revoked_at is None) for info in everything] == [
        ("ci", True),
        ("nightly", False),
    ]


async def test_create_and_revoke_are_journaled_with_their_shapes(database: Database) -> None:
    created = await make(database)
    await tokens.revoke(database, origin=Origin(actor="security"), name="ci")
    async with database.read() as session:
        entries = list(await session.scalars(select(JournalRow).order_by(JournalRow.seq)))
    assert [(e.actor, e.action, e.entity_type) for e in entries] == [
        ("admin", Action.API_TOKEN_CREATED, EntityType.API_TOKEN),
        ("security", Action.API_TOKEN_REVOKED, EntityType.API_TOKEN),
    ]
    made = journal.after(entries[0], journal.ApiToken)
    assert made == {
        "name": "ci",
        "prefix": created.token[:20],
        "subject": subject(created),
        "project": "fraud",
        "role": "contributor",
        "expires_at": created.info.expires_at.isoformat(),
    }
    assert journal.before(entries[1], journal.ApiToken) == made
    assert journal.after(entries[1], journal.Revocation)["revoked_at"]
    secret = created.token.split("_", 2)[2]
    for entry in entries:
        journal.check(entry.action, entry.entity_type, entry.changes)
        assert secret not in str(entry.changes)
        assert tokens.secret_hash(secret) not in str(entry.changes)


async def test_a_live_name_is_unique_and_free_again_once_revoked(database: Database) -> None:
    first = await make(database)
    with pytest.raises(tokens.TokenError, match="exists: revoke it first"):
        await make(database)
    await tokens.revoke(database, origin=Origin(actor="admin"), name="ci")
    again = await make(database)
    # Same name, another token: the journal tells the two apart by their subjects.
    assert (await tokens.ApiTokens(database).principal(again.token)).subject == subject(again)
    assert subject(again) != subject(first)
    assert subject(again).startswith("token:ci#")
    with pytest.raises(tokens.TokenError, match="no token named"):
        await tokens.revoke(database, origin=Origin(actor="admin"), name="nope")


SUBJECTS_MIGRATION = "20261129_0010"  # api_token_subjects


async def test_the_migration_gives_older_tokens_their_own_subject(database: Database) -> None:
    created = await make(database)
    await migrate.downgrade(database, f"{SUBJECTS_MIGRATION}-1")  # before it
    try:
        async with database.read() as session:
            older = (await session.scalars(select(ApiTokenRow.subject))).one()
        assert older == "token:ci"
    finally:
        await migrate.upgrade(database)
    assert (await tokens.ApiTokens(database).principal(created.token)).subject == subject(created)


@pytest.mark.parametrize(
    ("name", "days", "message"),
    [("CI", 90, "a token name"), ("ci", 0, "1 to 365 days"), ("ci", 366, "1 to 365 days")],
)
async def test_a_bad_name_or_lifetime_is_refused(
    database: Database, name: str, days: int, message: str
) -> None:
    with pytest.raises(tokens.TokenError, match=message):
        await make(database, name, days)


async def test_a_check_costs_one_indexed_read(database: Database) -> None:
    created = await make(database)
    checker = tokens.ApiTokens(database)
    await checker.principal(created.token)  # warm the pool
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        await checker.principal(created.token)
    per_check = (time.perf_counter() - started) / rounds
    print(f"{database.dialect}: {per_check * 1e6:.0f} µs per token check")
    assert per_check < 0.05
    counter = Api(database).count_statements()
    await checker.principal(created.token)
    [statement] = counter.statements
    assert "FROM api_tokens" in statement and "public_id" in statement
    with pytest.raises(Unauthenticated):
        await checker.principal(_wrong_secret(created.token))


@pytest.mark.parametrize("role", ["r" * 51, "user:alice", "group:ml", "Admin", ""])
async def test_a_role_that_is_no_role_name_is_refused_before_the_database(
    database: Database, role: str
) -> None:
    """PostgreSQL refused a 51-character role in the INSERT, whose error printed the hash; and
    a role such as user:alice would make the token act as alice in its project."""
    with pytest.raises(tokens.TokenError, match="role is a role's name"):
        await tokens.create(
            database,
            origin=Origin(actor="admin"),
            name="ci",
            project="fraud",
            role=role,
            days=9,
            max_days=9,
        )
