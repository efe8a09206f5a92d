"""GraphQL over HTTP at the edge, in process: refusals with codes, media types, request ids,
production mode, security headers and the self-contained GraphiQL page."""

import asyncio
import base64
import hashlib
import logging
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mlcatalog.api.context import Context
from mlcatalog.api.http import CatalogGraphQL, json_depth_exceeds
from mlcatalog.api.middleware import RequestId
from mlcatalog.api.operations import projects
from mlcatalog.api.schema import schema
from mlcatalog.app import create_app
from mlcatalog.auth.authenticate import DevelopmentUser
from mlcatalog.settings import LimitsSettings, SearchSettings, ServerSettings, Settings
from mlcatalog.store import queries

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON_HEADERS = {"Content-Type": "application/json"}

Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Client]:
    """Opens the app (with its lifespan) on a fresh catalog, with settings as given."""
    async with AsyncExitStack() as stack:

        async def open_client(
            environment: str = "development", limits: dict[str, Any] | None = None, **server: Any
        ) -> httpx.AsyncClient:
            path = tmp_path / f"catalog-{len(stack._exit_callbacks)}.db"
            shutil.copy(sqlite_template, path)
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{path}",
                environment=environment,  # type: ignore[arg-type]
                server=ServerSettings(**server),
                search=SearchSettings(serve_indexer=False),
                limits=LimitsSettings(**(limits or {})),
            )
            # Production needs an identity provider: tests/auth/ has those; here, one user.
            app = create_app(settings, authenticator=DevelopmentUser(settings.auth.dev_user))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )

        yield open_client


def refusal(response: httpx.Response, status: int) -> str:
    """The one error of a refused request: its status, no data, a code; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_ARGUMENT"
    return str(error["message"])


# --- every malformed request is refused with a code ---


async def test_malformed_json_is_refused_with_400(client: Client) -> None:
    http = await client()
    response = await http.post("/graphql", content=b"{not json", headers=JSON_HEADERS)
    assert "not valid JSON" in refusal(response, 400)


@pytest.mark.parametrize("body", [b"5", b'"{ me { name } }"', b"null", b"true"])
async def test_a_body_that_is_not_a_json_object_is_refused(client: Client, body: bytes) -> None:
    http = await client()
    response = await http.post("/graphql", content=body, headers=JSON_HEADERS)
    assert "JSON object" in refusal(response, 400)


async def test_a_batch_array_is_refused(client: Client) -> None:
    http = await client()
    response = await http.post("/graphql", json=[{"query": "{ me { name } }"}])
    assert "batched" in refusal(response, 400)


async def test_json_nested_deeper_than_64_levels_is_refused(client: Client) -> None:
    http = await client()
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"query": "{ me { name } }", "variables": {"v": ' + deep + b"}}"
    response = await http.post("/graphql", content=body, headers=JSON_HEADERS)
    assert "deeper than 64" in refusal(response, 400)


async def test_json_within_the_depth_bound_is_served(client: Client) -> None:
    http = await client()
    nested: Any = []
    for _ in range(60):
        nested = [nested]
    response = await http.post(
        "/graphql", json={"query": "{ me { name } }", "variables": {"unused": nested}}
    )
    assert response.json() == {"data": {"me": {"name": "local-dev"}}}


def test_brackets_inside_json_strings_do_not_count_as_depth() -> None:
    query = '{"query": "' + "{ a " * 200 + "}" * 200 + '\\" [[[", "variables": {}}'
    assert not json_depth_exceeds(query.encode())
    assert json_depth_exceeds(b'{"a": "\\"", "b": ' + b"[" * 70 + b"]" * 70 + b"}")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/graphql", "application/json; charset=latin-1"]
)
async def test_a_wrong_or_missing_content_type_is_refused_with_415(
    client: Client, content_type: str | None
) -> None:
    http = await client()
    headers = {"Content-Type": content_type} if content_type else {}
    response = await http.post("/graphql", content=b'{"query": "{ me { name } }"}', headers=headers)
    assert "application/json" in refusal(response, 415)


async def test_a_body_that_is_not_utf8_is_refused(client: Client) -> None:
    http = await client()
    response = await http.post("/graphql", content=b'{"query": "\xff"}', headers=JSON_HEADERS)
    refusal(response, 400)


@pytest.mark.parametrize(
    "body", [{}, {"query": None}, {"query": 5}, {"query": ""}, {"query": ["{ me { name } }"]}]
)
async def test_a_missing_or_invalid_query_is_refused(client: Client, body: Any) -> None:
    http = await client()
    assert "query" in refusal(await http.post("/graphql", json=body), 400)


@pytest.mark.parametrize("variables", [[1], "{}", 5])
async def test_variables_that_are_not_an_object_are_refused(client: Client, variables: Any) -> None:
    http = await client()
    response = await http.post(
        "/graphql", json={"query": "{ me { name } }", "variables": variables}
    )
    assert "`variables`" in refusal(response, 400)


@pytest.mark.parametrize("name", [5, ["Q"], {"name": "Q"}])
async def test_an_operation_name_that_is_not_a_string_is_refused(client: Client, name: Any) -> None:
    http = await client()
    response = await http.post(
        "/graphql", json={"query": "query Q { me { name } }", "operationName": name}
    )
    assert "`operationName`" in refusal(response, 400)


async def test_an_unknown_operation_name_is_refused_with_a_code(client: Client) -> None:
    http = await client()
    response = await http.post(
        "/graphql", json={"query": "query Q { me { name } }", "operationName": "P"}
    )
    assert "P" in refusal(response, 400)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_another_method_gets_405_with_the_allowed_ones(client: Client, method: str) -> None:
    http = await client()
    response = await http.request(method, "/graphql", json={"query": "{ me { name } }"})
    refusal(response, 405)
    assert response.headers["allow"] == "GET, POST"


async def test_a_query_over_get_is_served_in_development(client: Client) -> None:
    http = await client()
    response = await http.get("/graphql", params={"query": "{ me { name } }"})
    assert response.json() == {"data": {"me": {"name": "local-dev"}}}


async def test_a_mutation_over_get_gets_405_in_development(client: Client) -> None:
    http = await client()
    mutation = 'mutation { createProject(input: {name: "viaget"}) { project { id } } }'
    response = await http.get("/graphql", params={"query": mutation})
    refusal(response, 405)
    assert response.headers["allow"] == "POST"
    projects = await http.post("/graphql", json={"query": "{ projects { totalCount } }"})
    assert projects.json()["data"]["projects"]["totalCount"] == 0


async def test_variables_over_get_that_are_not_json_are_refused(client: Client) -> None:
    http = await client()
    response = await http.get("/graphql", params={"query": "{ me { name } }", "variables": "{"})
    assert "`variables`" in refusal(response, 400)


# --- GraphQL over HTTP: media types and status codes ---


async def test_a_graphql_response_json_client_gets_that_media_type(client: Client) -> None:
    http = await client()
    response = await http.post(
        "/graphql",
        json={"query": "{ me { name } }"},
        headers={"Accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json() == {"data": {"me": {"name": "local-dev"}}}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ me { name ", {}),
        ("{ nope }", {}),
        ("query($n: Int!) { models(first: $n) { totalCount } }", {"n": "many"}),
        ("query($n: Int!) { models(first: $n) { totalCount } }", {}),
    ],
    ids=["syntax", "validation", "variable-coercion", "missing-variable"],
)
async def test_a_request_error_is_400_without_data_for_graphql_response_json(
    client: Client, query: str, variables: dict[str, Any]
) -> None:
    http = await client()
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    refusal(response, 400)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ me { name ", {}),
        ("{ nope }", {}),
        ("query($n: Int!) { models(first: $n) { totalCount } }", {"n": "many"}),
    ],
    ids=["syntax", "validation", "variable-coercion"],
)
async def test_a_request_error_stays_200_with_null_data_for_application_json(
    client: Client, query: str, variables: dict[str, Any]
) -> None:
    http = await client()
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_ARGUMENT"]


async def test_a_field_error_stays_200_with_data_for_graphql_response_json(client: Client) -> None:
    http = await client()
    response = await http.post(
        "/graphql",
        json={"query": '{ me { name } node(id: "garbage") { id } }'},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"me": {"name": "local-dev"}, "node": None}
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


async def test_a_timeout_is_200_with_null_data_for_graphql_response_json(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request was well-formed and ran: not a request error, but a result with no data."""

    async def slow(*_: Any, **__: Any) -> Any:
        await asyncio.sleep(5)

    monkeypatch.setattr(projects, "listing_connection", slow)
    http = await client(limits={"operation_timeout_seconds": 0.05})
    response = await http.post(
        "/graphql",
        json={"query": "{ projects { totalCount } }"},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["DEADLINE_EXCEEDED"]


@pytest.mark.parametrize(
    "query", ["{ me { name ", "{ nope }", "query Q { me { name } } query Q { me { name } }"]
)
async def test_every_pre_execution_error_carries_a_code_in_process(query: str) -> None:
    result = await schema.execute(query)
    assert result.errors
    assert all(e.extensions and e.extensions["code"] == "INVALID_ARGUMENT" for e in result.errors)


# --- request ids ---


async def test_a_sane_incoming_request_id_is_returned(client: Client) -> None:
    http = await client()
    response = await http.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"})
    assert response.headers["x-request-id"] == "trace-42.a:b"


@pytest.mark.parametrize("incoming", ["has space", "x" * 129, "<script>", "ünïcode", ""])
async def test_an_unsafe_incoming_request_id_is_replaced(client: Client, incoming: str) -> None:
    http = await client()
    response = await http.get("/healthz", headers={"X-Request-ID": incoming.encode("utf-8")})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_each_request_gets_a_new_id_when_none_is_given(client: Client) -> None:
    http = await client()
    first, second = await http.get("/healthz"), await http.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_the_request_id_is_in_the_scope_state_for_inner_middleware() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["state"]["request_id"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=RequestId(inner))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/", headers={"X-Request-ID": "abc"})
    assert seen == ["abc"]
    assert response.headers["x-request-id"] == "abc"


async def test_an_internal_error_is_logged_once_with_the_request_id(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    http = await client()

    def broken(**_: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(queries, "projects_listing", broken)
    with caplog.at_level(logging.ERROR):
        response = await http.post(
            "/graphql",
            json={"query": "{ projects { totalCount } }"},
            headers={"X-Request-ID": "req-1"},
        )
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "req-1"}
    assert "fire" not in response.text
    logged = [r for r in caplog.records if r.exc_info and "fire" in str(r.exc_info[1])]
    assert len(logged) == 1
    assert "req-1" in logged[0].getMessage()


async def test_an_unhandled_exception_is_a_coded_500_logged_once(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    http = await client()

    async def broken(*_: Any, **__: Any) -> Context:
        raise RuntimeError("no context today")

    monkeypatch.setattr(CatalogGraphQL, "get_context", broken)
    with caplog.at_level(logging.ERROR):
        response = await http.post(
            "/graphql", json={"query": "{ me { name } }"}, headers={"X-Request-ID": "req-2"}
        )
    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": "req-2"}
    assert response.headers["x-request-id"] == "req-2"
    assert response.headers["x-content-type-options"] == "nosniff"
    logged = [r for r in caplog.records if r.exc_info and "no context" in str(r.exc_info[1])]
    assert len(logged) == 1
    assert "req-2" in logged[0].getMessage()


# --- production ---

INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_production_refuses_introspection(client: Client) -> None:
    http = await client("production")
    response = await http.post("/graphql", json={"query": INTROSPECTION})
    body = response.json()
    assert body["data"] is None
    assert "'__schema'" in body["errors"][0]["message"]
    for error in body["errors"]:
        assert "introspection has been disabled" in error["message"]
        assert error["extensions"]["code"] == "INVALID_ARGUMENT"


async def test_introspection_stays_on_in_development(client: Client) -> None:
    http = await client()
    response = await http.post("/graphql", json={"query": INTROSPECTION})
    assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_a_setting_turns_introspection_on_in_production(client: Client) -> None:
    http = await client("production", introspection=True)
    response = await http.post("/graphql", json={"query": INTROSPECTION})
    assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_production_suggests_no_field_names(client: Client) -> None:
    http = await client("production")
    response = await http.post("/graphql", json={"query": "{ mee { name } }"})
    [error] = response.json()["errors"]
    assert error["message"] == "Cannot query field 'mee' on type 'Query'."


async def test_production_suggests_no_enum_values_for_variables(client: Client) -> None:
    http = await client("production")
    query = "query($s: Stage!) { models(filter: {stage: $s}) { totalCount } }"
    response = await http.post("/graphql", json={"query": query, "variables": {"s": "PRODUCTON"}})
    [error] = response.json()["errors"]
    assert "PRODUCTON" in error["message"]
    assert "Did you mean" not in error["message"]


async def test_development_suggests_field_names(client: Client) -> None:
    http = await client()
    response = await http.post("/graphql", json={"query": "{ mee { name } }"})
    assert "Did you mean 'me'?" in response.json()["errors"][0]["message"]


async def test_production_refuses_queries_over_get(client: Client) -> None:
    http = await client("production")
    response = await http.get("/graphql", params={"query": "{ me { name } }"})
    refusal(response, 405)
    assert response.headers["allow"] == "POST"


async def test_production_serves_no_graphiql(client: Client) -> None:
    http = await client("production")
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    refusal(page, 405)
    assert (await http.get("/graphiql/mlcatalog-graphiql.js")).status_code == 404


async def test_a_setting_turns_graphiql_on_in_production(client: Client) -> None:
    http = await client("production", graphiql=True)
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert 'id="graphiql"' in page.text
    query = await http.get("/graphql", params={"query": "{ me { name } }"})
    refusal(query, 405)


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/graphql"), ("GET", "/healthz"), ("GET", "/nowhere"), ("PUT", "/graphql")],
)
async def test_every_response_carries_the_security_headers(
    client: Client, environment: str, method: str, path: str
) -> None:
    http = await client(environment)
    response = await http.request(method, path, json={"query": "{ me { name } }"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    hsts = response.headers.get("strict-transport-security")
    assert (hsts is not None) == (environment == "production")


async def test_the_graphiql_page_has_a_csp_of_its_own(client: Client) -> None:
    http = await client()
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp


# --- GraphiQL without internet ---


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.references: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "src" in attributes or "href" in attributes:
            self.references.append(attributes)


async def graphiql_references(http: httpx.AsyncClient) -> tuple[str, list[dict[str, str | None]]]:
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    parser = Assets()
    parser.feed(page.text)
    return page.text, parser.references


async def test_the_graphiql_page_references_no_external_url(client: Client) -> None:
    http = await client()
    text, references = await graphiql_references(http)
    assert not re.search(r"(https?:)?//", text)
    assert len(references) >= 5


async def test_every_asset_of_the_graphiql_page_is_served_with_its_integrity(
    client: Client,
) -> None:
    http = await client()
    _, references = await graphiql_references(http)
    for reference in references:
        url = reference.get("src") or reference.get("href")
        assert url
        if url.startswith("data:"):
            continue
        asset = await http.get(httpx.URL("http://testserver/graphql").join(url))
        assert asset.status_code == 200, url
        integrity = reference.get("integrity")
        assert integrity, url
        digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
        assert integrity == f"sha384-{digest}", url


async def test_the_cost_limit_is_a_setting(client: Client) -> None:
    query = (
        "{ models(first: 50) { edges { node { versions(first: 50) { edges { node { id } } } } } } }"
    )
    default = await client()
    assert "errors" not in (await default.post("/graphql", json={"query": query})).json()
    strict = await client(limits={"max_cost": 1000})
    body = (await strict.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    assert "1,000 allowed" in body["errors"][0]["message"]


async def test_a_client_gone_before_its_body_arrived_ends_quietly(
    tmp_path: Path, sqlite_template: Path
) -> None:
    # A load generator's window ends mid-request: no traceback, no 500 to send to no one.
    path = tmp_path / "catalog.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}", search=SearchSettings(serve_indexer=False)
    )
    app = create_app(settings, authenticator=DevelopmentUser(settings.auth.dev_user))
    messages = iter(
        [
            {"type": "http.request", "body": b'{"query": "{ me', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Any] = []

    async def receive() -> Any:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert not [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500]
