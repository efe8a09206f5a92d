"""Browser login end to end against the real provider: /auth/login → the provider → /auth/callback
→ a session cookie that queries as the user, CSRF and CORS for cookie-borne requests, logout; and
each way a callback can be wrong, refused with a code."""

from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from mlcatalog.auth.login import InvalidReturnPath, LoginFlow, PendingLogin, return_path
from mlcatalog.auth.oidc import TokenValidator
from mlcatalog.settings import AuthSettings, ServerSettings, Settings
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.journal import Action, EntityType
from mlcatalog.store.rows import SessionRow, utcnow
from tests.api.test_journal import journal
from tests.auth.conftest import CLIENT_ID, ME, AppClient, Client, Provider

SESSION = "__Host-mlcatalog_session"
PENDING = "__Host-mlcatalog_login"
OWN = {"Origin": "https://testserver"}
CREATE = {"query": 'mutation { createProject(input: {name: "vision"}) { project { name } } }'}


async def to_provider(http: AppClient, next_path: str | None = None) -> str:
    """Starts a login; the provider's redirect back to the callback (its login needs no form)."""
    query = "" if next_path is None else "?" + urlencode({"next": next_path})
    start = await http.get(f"/auth/login{query}")
    assert start.status_code == 303, start.text
    async with httpx.AsyncClient() as browser:
        back = await browser.get(start.headers["location"])
    assert back.status_code == 302, back.text
    callback: str = back.headers["location"]
    assert callback.startswith("https://testserver/auth/callback?")
    return callback


async def log_in(http: AppClient, next_path: str | None = None) -> httpx.Response:
    return await http.get(await to_provider(http, next_path))


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code
    return str(error["message"])


def only(name: str, value: str) -> dict[str, str]:
    """A Cookie header with this one cookie (it replaces the client's)."""
    return {"Cookie": f"{name}={value}"}


def set_cookie(response: httpx.Response, name: str) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return header


async def test_a_browser_logs_in_acts_as_its_user_with_csrf_proof_and_logs_out(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    start = await http.get("/auth/login", params={"next": "/graphql?tab=1"})
    authorize = parse_qs(urlsplit(start.headers["location"]).query)
    assert authorize["client_id"] == [CLIENT_ID]
    assert authorize["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= set(authorize)
    pending = set_cookie(start, PENDING)
    assert all(a in pending for a in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"))

    callback = await log_in(http, "/graphql?tab=1")
    assert callback.status_code == 303, callback.text
    assert callback.headers["location"] == "/graphql?tab=1"
    cookie = set_cookie(callback, SESSION)
    assert all(a in cookie for a in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"))
    assert "Max-Age=28800" in cookie or "Max-Age=28799" in cookie  # 8 hours, absolute
    assert set_cookie(callback, PENDING).startswith(f'{PENDING}=""')  # used once
    assert http.cookies.get(SESSION) is not None

    me = await http.post("/graphql", json=ME, headers=OWN)
    assert me.json() == {"data": {"me": {"name": "alice"}}}
    # CSRF: a POST the cookie carries needs the server's own Origin (a page elsewhere has its own).
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"}):
        forged = await http.post("/graphql", json=CREATE, headers=headers)
        assert "Origin" in refused(forged, 403, "FORBIDDEN")
    created = await http.post("/graphql", json=CREATE, headers=OWN)
    assert created.json() == {"data": {"createProject": {"project": {"name": "vision"}}}}

    old = http.cookies.get(SESSION)
    logout = await http.post("/auth/logout", headers=OWN)
    assert logout.status_code == 204
    assert set_cookie(logout, SESSION).startswith(f'{SESSION}=""')
    after = await http.post("/graphql", json=ME, headers={**OWN, **only(SESSION, old or "")})
    assert "not valid" in refused(after, 401, "UNAUTHENTICATED")

    database: Database = http.app.state.database
    entries = [(e.actor, e.action, e.entity_type) for e in await journal(database)]
    assert entries == [
        ("alice", Action.SESSION_STARTED, EntityType.SESSION),
        ("alice", Action.PROJECT_CREATED, EntityType.PROJECT),
        ("alice", Action.SESSION_ENDED, EntityType.SESSION),
    ]


async def test_login_and_logout_are_journaled_with_the_client_and_request(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    callback = await http.get(await to_provider(http), headers={"X-Request-ID": "login-1"})
    assert callback.status_code == 303, callback.text
    logout = await http.post("/auth/logout", headers={**OWN, "X-Request-ID": "logout-1"})
    assert logout.status_code == 204
    database: Database = http.app.state.database
    # httpx's ASGI transport reports the client as 127.0.0.1, as uvicorn reports the peer.
    assert [
        (e.action, e.actor, e.auth_method, e.client_address, e.request_id)
        for e in await journal(database)
    ] == [
        (Action.SESSION_STARTED, "alice", "session", "127.0.0.1", "login-1"),
        (Action.SESSION_ENDED, "alice", "session", "127.0.0.1", "logout-1"),
    ]


async def test_the_journal_and_the_table_keep_no_secret_of_the_cookie(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    await log_in(http)
    cookie = http.cookies[SESSION]
    public_id, secret = cookie.split(".")
    database: Database = http.app.state.database
    async with database.read() as session:
        row = (await session.scalars(select(SessionRow))).one()
    assert row.public_id == public_id and row.subject == "alice"
    stored = [str(getattr(row, column.key)) for column in SessionRow.__table__.columns]
    assert not any(secret in value for value in stored)
    [entry] = await journal(database)
    assert entry.entity_id == row.id
    assert secret not in str(entry.changes) and row.secret_sha256 not in str(entry.changes)
    assert entry.changes["after"] == {"subject": "alice", "expires_at": row.expires_at.isoformat()}


async def test_a_callback_with_another_state_is_refused(client: Client, provider: Provider) -> None:
    http = await client(provider.login_settings())
    url = urlsplit(await to_provider(http))
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    params["state"] = "x" + params["state"][1:]
    response = await http.get(f"/auth/callback?{urlencode(params)}")
    assert "state does not match" in refused(response, 401, "UNAUTHENTICATED")
    assert SESSION not in http.cookies


async def test_a_code_used_once_is_refused_the_second_time(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    callback = await to_provider(http)
    pending = http.cookies[PENDING]
    assert (await http.get(callback)).status_code == 303
    # The same callback again, even with the pending login's cookie put back.
    replay = await http.get(callback, headers=only(PENDING, pending))
    assert "refused the login's code" in refused(replay, 401, "UNAUTHENTICATED")


async def test_a_callback_in_a_browser_that_did_not_start_the_login_is_refused(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    callback = await to_provider(http)
    http.cookies.clear()  # another browser: no PKCE verifier, no state, no nonce
    response = await http.get(callback)
    assert "no login is under way" in refused(response, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("field", "reason"),
    [("nonce", "nonce differs"), ("verifier", "invalid_pkce")],  # the ID token's, the provider's
)
async def test_a_pending_login_changed_in_the_browser_is_refused(
    client: Client, provider: Provider, field: str, reason: str
) -> None:
    http = await client(provider.login_settings())
    callback = await to_provider(http)
    forged = replace(PendingLogin.decode(http.cookies[PENDING]), **{field: "x" * 64})
    response = await http.get(callback, headers=only(PENDING, forged.encode()))
    assert reason in refused(response, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "next_path", ["https://evil.example", "//evil.example", "/\\evil.example", "graphql"]
)
async def test_a_return_path_to_another_site_is_refused(
    client: Client, provider: Provider, next_path: str
) -> None:
    http = await client(provider.login_settings())
    response = await http.get("/auth/login", params={"next": next_path})
    assert "path on this server" in refused(response, 400, "INVALID_ARGUMENT")
    assert PENDING not in http.cookies


def test_return_paths_stay_on_this_server() -> None:
    assert return_path(None, "/graphql") == "/graphql"
    assert return_path("/graphql?tab=1#x", "/graphql") == "/graphql?tab=1#x"
    for bad in ("https://evil.example/", "//evil", "/\\evil", "/a\r\nLocation: x", "/" * 2001):
        with pytest.raises(InvalidReturnPath):
            return_path(bad, "/graphql")


async def test_an_expired_or_forged_session_is_unauthenticated(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    await log_in(http)
    cookie = http.cookies[SESSION]
    public_id, secret = cookie.split(".")
    forged = f"{public_id}.{'A' * len(secret)}"
    for value, reason in ((forged, "not valid"), ("garbage", "malformed")):
        response = await http.post("/graphql", json=ME, headers={**OWN, **only(SESSION, value)})
        assert reason in refused(response, 401, "UNAUTHENTICATED")
    database: Database = http.app.state.database
    async with database.unit_of_work(Origin(actor="test")) as uow:
        await uow.session.execute(
            update(SessionRow).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await http.post("/graphql", json=ME, headers=OWN)
    assert "expired" in refused(response, 401, "UNAUTHENTICATED")


async def test_an_authorization_header_wins_over_the_session_cookie(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    await log_in(http)
    response = await http.post("/graphql", json=ME, headers={"Authorization": "Bearer nonsense"})
    refused(response, 401, "UNAUTHENTICATED")
    # A bearer request needs no Origin: no browser adds the header on its own.
    bearer = await http.post(
        "/graphql", json=CREATE, headers={"Authorization": f"Bearer {provider.token()}"}
    )
    assert "errors" not in bearer.json(), bearer.json()


async def test_logout_is_a_post_from_this_server_s_pages(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    await log_in(http)
    get = await http.get("/auth/logout")
    refused(get, 405, "INVALID_ARGUMENT")
    assert get.headers["allow"] == "POST"
    refused(
        await http.post("/auth/logout", headers={"Origin": "https://evil.example"}),
        403,
        "FORBIDDEN",
    )
    me = await http.post("/graphql", json=ME, headers=OWN)
    assert me.json() == {"data": {"me": {"name": "alice"}}}  # still logged in


async def test_cors_names_listed_origins_only_and_their_posts_pass_the_csrf_check(
    client: Client, provider: Provider
) -> None:
    dashboards = "https://dashboards.example.org"
    http = await client(provider.login_settings(), server=ServerSettings(cors_origins=[dashboards]))
    await log_in(http)
    listed = await http.post("/graphql", json=ME, headers={"Origin": dashboards})
    assert listed.json() == {"data": {"me": {"name": "alice"}}}
    assert listed.headers["access-control-allow-origin"] == dashboards
    assert listed.headers["access-control-allow-credentials"] == "true"
    preflight = await http.options(
        "/graphql",
        headers={
            "Origin": dashboards,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == dashboards
    evil = {"Origin": "https://evil.example"}
    unlisted = await http.post("/graphql", json=ME, headers=evil)
    refused(unlisted, 403, "FORBIDDEN")
    assert "access-control-allow-origin" not in unlisted.headers
    preflight = await http.options(
        "/graphql", headers={**evil, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_without_listed_origins_no_answer_names_an_origin(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    response = await http.post("/graphql", json=ME, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_the_graphiql_page_offers_a_login_without_a_session(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    html = {"Accept": "text/html"}
    assert 'href="auth/login"' in (await http.get("/graphql", headers=html)).text
    await log_in(http)
    assert 'href="auth/login"' not in (await http.get("/graphql", headers=html)).text


async def test_plain_http_development_drops_secure_and_the_host_prefix(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings(cookie_secure=False))
    response = await http.get("/auth/login")
    cookie = set_cookie(response, "mlcatalog_login")
    assert "Secure" not in cookie and "HttpOnly" in cookie


async def test_without_a_client_id_there_is_no_browser_login(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.settings())
    assert (await http.get("/auth/login")).status_code == 404
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert "auth/login" not in page.text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"server": {"cors_origins": ["*"]}}, "not an origin"),
        ({"server": {"cors_origins": ["https://a.example/path"]}}, "not an origin"),
        ({"auth": {"client_id": "web"}}, "needs auth.issuer"),
        ({"auth": {"redirect_url": "/auth/callback"}}, "absolute"),
        (
            {
                "environment": "production",
                "auth": {"issuer": "https://id", "audience": "a", "cookie_secure": False},
            },
            "plain-http development",
        ),
    ],
)
def test_settings_refuse_unsafe_login_and_cors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**changes)


def test_login_settings_default_to_secure_eight_hour_sessions() -> None:
    auth = AuthSettings(issuer="https://id.example", audience="api", client_id="web")
    assert auth.browser_login and auth.cookie_secure and auth.session_hours == 8


async def test_a_login_the_provider_refused_is_unauthenticated_with_its_error(
    client: Client, provider: Provider
) -> None:
    http = await client(provider.login_settings())
    await http.get("/auth/login")
    response = await http.get("/auth/callback?error=access_denied&error_description=no+thanks")
    message = refused(response, 401, "UNAUTHENTICATED")
    assert "access_denied no thanks" in message


async def test_a_provider_that_cannot_be_reached_is_a_503_without_its_address(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = "http://127.0.0.1:9/nowhere"  # the discard port: nothing answers
    http = await client(AuthSettings(issuer=unreachable, audience="api", client_id=CLIENT_ID))
    response = await http.get("/auth/login")
    assert "127.0.0.1" not in refused(response, 503, "UNAUTHENTICATED")
    assert "127.0.0.1:9" in caplog.text


async def test_login_and_bearer_tokens_read_the_discovery_document_once(
    provider: Provider,
) -> None:
    fetched: list[str] = []

    async def count(request: httpx.Request) -> None:
        fetched.append(request.url.path)

    settings = provider.login_settings()
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        validator = TokenValidator(settings, client=http)
        flow = LoginFlow(settings, validator)
        await flow.begin(redirect_uri="https://testserver/auth/callback", next_path="/graphql")
        assert (await validator.principal(provider.token())).subject == "alice"
        await flow.begin(redirect_uri="https://testserver/auth/callback", next_path="/graphql")
    assert fetched.count("/mlcatalog/.well-known/openid-configuration") == 1
