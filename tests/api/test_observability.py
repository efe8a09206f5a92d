"""Access lines, Prometheus metrics and traces at the HTTP edge, in process over ASGI."""

import asyncio
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from mlcatalog.api import tracing
from mlcatalog.api.context import Context
from mlcatalog.api.observability import Operation, OperationNames
from mlcatalog.api.operations import projects
from mlcatalog.api.schema import schema
from mlcatalog.app import create_app
from mlcatalog.auth.authenticate import DevelopmentUser
from mlcatalog.search.indexer import Indexer
from mlcatalog.search.opensearch import OpenSearchBackend
from mlcatalog.search.request import SearchRequest, SearchResult
from mlcatalog.search.sql import SqlSearchBackend
from mlcatalog.settings import Settings
from mlcatalog.store.database import Database

Client = httpx.AsyncClient


@pytest.fixture
def url(tmp_path: Path, sqlite_template: Path) -> str:
    shutil.copy(sqlite_template, tmp_path / "catalog.db")
    return f"sqlite+aiosqlite:///{tmp_path}/catalog.db"


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[Client]:
    # Production needs an identity provider; these tests are about the access line, not login.
    app = create_app(settings, authenticator=DevelopmentUser(settings.auth.dev_user))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "mlcatalog.access"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_access_log_is_on_in_production_only_unless_a_setting_says() -> None:
    assert Settings(environment="production").server.access_log is True
    assert Settings(environment="development").server.access_log is False
    assert Settings(environment="test").server.access_log is False
    off = Settings(environment="production", server={"access_log": False})
    assert off.server.access_log is False
    on = Settings(environment="development", server={"access_log": True})
    assert on.server.access_log is True


async def test_one_json_access_line_per_request(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mlcatalog.access")
    settings = Settings(database_url=url, environment="production")
    async with served(settings) as client:
        answered = await client.post("/graphql", json={"query": "query Who { me { name } }"})
        await client.post(
            "/graphql",
            json={"query": 'query Missing { model(project: "x", name: "y") { id } nope }'},
        )
        await client.get("/healthz")
    ok, failed = access_lines(caplog)
    assert ok["operation"] == "Who"
    assert ok["operation_type"] == "query"
    assert ok["status"] == 200
    assert ok["error_codes"] == []
    assert ok["pid"] == os.getpid()
    assert ok["duration_ms"] > 0
    assert ok["request_id"] == answered.headers["x-request-id"]
    assert ok["request_id"] != failed["request_id"]
    assert failed["operation"] == "Missing"
    assert failed["error_codes"] == ["INVALID_ARGUMENT"]


async def test_the_access_line_carries_the_request_id_the_client_sent(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlcatalog.access")
    settings = Settings(database_url=url, server={"access_log": True})
    async with served(settings) as client:
        await client.post(
            "/graphql", json={"query": "{ me { name } }"}, headers={"X-Request-ID": "req-42"}
        )
    [line] = access_lines(caplog)
    assert line["request_id"] == "req-42"
    assert line["operation"] is None


async def test_no_access_line_outside_production_by_default(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlcatalog.access")
    async with served(Settings(database_url=url)) as client:
        await client.post("/graphql", json={"query": "{ me { name } }"})
    assert access_lines(caplog) == []


async def test_metrics_count_requests_by_operation_and_code(url: str) -> None:
    ok = sample("mlcatalog_graphql_requests_total", operation="CountMe", code="OK")
    bad = sample("mlcatalog_graphql_requests_total", operation="CountMe", code="INVALID_ARGUMENT")
    timed = sample("mlcatalog_graphql_request_duration_seconds_count", operation="CountMe")
    async with served(Settings(database_url=url)) as client:
        for _ in range(2):
            await client.post("/graphql", json={"query": "query CountMe { me { name } }"})
        invalid = "query CountMe { models(first: -1) { totalCount } }"
        await client.post("/graphql", json={"query": invalid})
        text = (await client.get("/metrics")).text
    assert sample("mlcatalog_graphql_requests_total", operation="CountMe", code="OK") == ok + 2
    after = sample("mlcatalog_graphql_requests_total", operation="CountMe", code="INVALID_ARGUMENT")
    assert after == bad + 1
    latency = sample("mlcatalog_graphql_request_duration_seconds_count", operation="CountMe")
    assert latency == timed + 3
    assert 'mlcatalog_graphql_requests_total{code="OK",operation="CountMe"}' in text
    assert 'mlcatalog_search_timeouts_total{limit="deadline"}' in text


def test_operation_names_are_capped_and_must_be_safe() -> None:
    names = OperationNames(limit=2)
    assert names.label(Operation(executed=True, name="First")) == "First"
    assert names.label(Operation(executed=True, name="x" * 65)) == "other"
    assert names.label(Operation(executed=True, name='a"b')) == "other"
    assert names.label(Operation(executed=True, name="Second")) == "Second"
    assert names.label(Operation(executed=True, name="Third")) == "other"
    assert names.label(Operation(executed=True, name="First")) == "First"
    assert names.label(Operation(executed=True)) == "anonymous"
    assert names.label(Operation()) == "none"


async def test_client_chosen_names_beyond_the_cap_count_as_other(url: str) -> None:
    settings = Settings(database_url=url, telemetry={"max_operation_names": 1})
    before = sample("mlcatalog_graphql_requests_total", operation="other", code="OK")
    async with served(settings) as client:
        for i in range(3):
            await client.post("/graphql", json={"query": f"query Name{i} {{ me {{ name }} }}"})
    after = sample("mlcatalog_graphql_requests_total", operation="other", code="OK")
    assert after == before + 2


async def test_the_indexer_lag_is_read_at_scrape_time(url: str) -> None:
    settings = Settings(database_url=url, search={"serve_indexer": False})

    def lag(text: str) -> float:
        [value] = re.findall(r"^mlcatalog_indexer_lag_entries (\S+)$", text, re.M)
        return float(value)

    async with served(settings) as client:
        assert lag((await client.get("/metrics")).text) == 0
        for name in ("a", "b"):
            query = (
                f'mutation {{ createProject(input: {{name: "{name}"}}) {{ project {{ id }} }} }}'
            )
            assert "errors" not in (await client.post("/graphql", json={"query": query})).json()
        assert lag((await client.get("/metrics")).text) == 2
        database = Database(url)
        await Indexer(database, SqlSearchBackend(database), name="embedded").catch_up()
        await database.dispose()
        assert lag((await client.get("/metrics")).text) == 0


class SlowSearch:
    async def search(self, request: SearchRequest) -> SearchResult:
        await asyncio.sleep(5)
        raise AssertionError("not reached")


async def test_a_search_past_its_deadline_is_counted(url: str) -> None:
    before = sample("mlcatalog_search_timeouts_total", limit="deadline")
    database = Database(url)
    context = Context(database=database, actor="t", search=SlowSearch(), search_timeout=0.05)  # type: ignore[arg-type]
    result = await schema.execute("{ search(input: {}) { totalCount } }", context_value=context)
    await database.dispose()
    assert result.errors and result.errors[0].extensions == {"code": "SEARCH_UNAVAILABLE"}
    assert sample("mlcatalog_search_timeouts_total", limit="deadline") == before + 1


async def test_an_opensearch_client_timeout_is_counted() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)  # accepts, never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = OpenSearchBackend(f"http://127.0.0.1:{port}", timeout=0.1)
    before = sample("mlcatalog_search_timeouts_total", limit="opensearch")
    try:
        with pytest.raises(Exception, match="did not answer in time"):
            await backend.search(SearchRequest())
    finally:
        await backend.close()
        server.close()
    assert sample("mlcatalog_search_timeouts_total", limit="opensearch") == before + 1


async def test_a_query_is_traced_with_its_sql_beneath_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "OTLPSpanExporter", lambda endpoint: exporter)
    settings = Settings(
        database_url=url,
        telemetry={"otlp_endpoint": "http://127.0.0.1:1"},
        search={"serve_indexer": False},
    )
    async with served(settings) as client:
        body = {"query": "query Projects { projects { totalCount } }"}
        assert "errors" not in (await client.post("/graphql", json=body)).json()
        await client.post("/graphql", json={"query": "{ search(input: {}) { totalCount } }"})
    spans = exporter.get_finished_spans()
    [operation] = [s for s in spans if s.name == "query Projects"]
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "Projects"
    sql = [s for s in spans if s.parent and s.parent.span_id == operation.context.span_id]
    assert sql and all("SELECT" in s.name or s.attributes.get("db.statement") for s in sql)
    [search] = [s for s in spans if s.name == "search"]
    assert search.parent is not None
    root = next(s for s in spans if s.context.span_id == search.parent.span_id)
    assert root.name == "query"
    assert {s.context.trace_id for s in spans} == {
        operation.context.trace_id,
        root.context.trace_id,
    }


def test_without_a_collector_nothing_of_opentelemetry_is_imported(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from mlcatalog.app import create_app\n"
        "from mlcatalog.settings import Settings\n"
        f"create_app(Settings(database_url='sqlite+aiosqlite:///{tmp_path}/x.db'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


async def test_a_syntax_error_is_counted_and_logged_with_its_operation_and_code(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ParserCache raises from its hook: no extension's end of the operation ran for it."""
    caplog.set_level(logging.INFO, logger="mlcatalog.access")
    before = sample("mlcatalog_graphql_requests_total", operation="Broken", code="INVALID_ARGUMENT")
    settings = Settings(database_url=url, server={"access_log": True})
    async with served(settings) as client:
        body = {"query": "query Broken { me { name ", "operationName": "Broken"}
        response = await client.post("/graphql", json=body)
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    [line] = access_lines(caplog)
    assert (line["operation"], line["error_codes"]) == ("Broken", ["INVALID_ARGUMENT"])
    after = sample("mlcatalog_graphql_requests_total", operation="Broken", code="INVALID_ARGUMENT")
    assert after == before + 1


async def slow_listing(*_: Any, **__: Any) -> Any:
    await asyncio.sleep(5)
    raise AssertionError("not reached")


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_a_timeout_is_counted_and_logged_as_deadline_exceeded(
    url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, accept: str
) -> None:
    monkeypatch.setattr(projects, "listing_connection", slow_listing)
    caplog.set_level(logging.INFO, logger="mlcatalog.access")
    before = sample("mlcatalog_graphql_requests_total", operation="Slow", code="DEADLINE_EXCEEDED")
    settings = Settings(
        database_url=url,
        server={"access_log": True},
        limits={"operation_timeout_seconds": 0.05},
    )
    async with served(settings) as client:
        body = {"query": "query Slow { projects { totalCount } }"}
        response = await client.post("/graphql", json=body, headers={"Accept": accept})
    assert response.json()["errors"][0]["extensions"]["code"] == "DEADLINE_EXCEEDED"
    [line] = access_lines(caplog)
    assert (line["operation"], line["operation_type"]) == ("Slow", "query")
    assert line["error_codes"] == ["DEADLINE_EXCEEDED"]
    after = sample("mlcatalog_graphql_requests_total", operation="Slow", code="DEADLINE_EXCEEDED")
    assert after == before + 1


async def test_an_unknown_operation_name_is_counted_under_its_name(url: str) -> None:
    before = sample(
        "mlcatalog_graphql_requests_total", operation="Nowhere", code="INVALID_ARGUMENT"
    )
    async with served(Settings(database_url=url)) as client:
        body = {"query": "query Here { me { name } }", "operationName": "Nowhere"}
        assert (await client.post("/graphql", json=body)).status_code == 400
    after = sample("mlcatalog_graphql_requests_total", operation="Nowhere", code="INVALID_ARGUMENT")
    assert after == before + 1
