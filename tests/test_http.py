"""The HTTP edge, on a real uvicorn: GraphiQL, health, body limits, errors without a 500."""

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlcatalog.store import migrate
from mlcatalog.store.database import Database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlcatalog", "serve", "--port", str(port)],
        env={"MLCATALOG_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("http") / "catalog.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def migrated() -> None:
        database = Database(url)
        await migrate.upgrade(database)
        await database.dispose()

    asyncio.run(migrated())
    port = free_port()
    process = start_server(url, port)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        output = process.communicate()[0].decode()
        pytest.fail(f"the server did not start:\n{output}")
    yield base
    process.terminate()
    process.communicate(timeout=10)


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server) as client:
        yield client


async def test_the_served_app_names_requests_and_sends_security_headers(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/graphql", json={"query": "{ me { name } }"})
    assert len(response.headers["x-request-id"]) == 32
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "alive"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_a_browser_gets_graphiql(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_a_query_over_http(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ me { name } projects { totalCount } }"}
    )
    assert response.json() == {"data": {"me": {"name": "local-dev"}, "projects": {"totalCount": 0}}}


async def test_an_oversized_body_is_refused_with_a_code(http: httpx.AsyncClient) -> None:
    big = "x" * (5 * 1024 * 1024)
    response = await http.post(
        "/graphql",
        json={
            "query": 'mutation($d: String!) { createProject(input: {name: "p", description: $d}) { project { id } } }',
            "variables": {"d": big},
        },
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"query": 5}',
        b'{"query": "{ nope }"}',
        b'{"query": "{ models(first: -1) { totalCount } }"}',
    ],
)
async def test_malformed_requests_never_get_a_500(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (200, 400)
    assert "Traceback" not in response.text
    assert all(error["extensions"]["code"] for error in response.json()["errors"])


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    process = start_server(f"sqlite+aiosqlite:///{tmp_path}/empty.db", free_port())
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 1
    assert "mlcatalog migrate" in output


async def test_a_new_version_becomes_searchable_through_the_served_indexer(
    http: httpx.AsyncClient,
) -> None:
    async def gql(query: str, **variables: object) -> dict[str, Any]:
        body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
        assert "errors" not in body, body
        return dict(body["data"])

    await gql('mutation { createProject(input: {name: "lagtest"}) { project { id } } }')
    model = await gql(
        'mutation { registerModel(input: {project: "lagtest", name: "lag-probe"}) { model { id } } }'
    )
    await gql(
        "mutation($m: ID!) { createModelVersion(input: {model: $m}) { modelVersion { id } } }",
        m=model["registerModel"]["model"]["id"],
    )
    committed = time.monotonic()
    query = '{ search(input: {text: "lag probe"}) { totalCount } }'
    while (await gql(query))["search"]["totalCount"] == 0:
        assert time.monotonic() - committed < 10, "not searchable within 10 s"
        await asyncio.sleep(0.1)


async def test_the_journal_names_the_client_and_request_uvicorn_served(
    http: httpx.AsyncClient,
) -> None:
    made = await http.post(
        "/graphql",
        json={"query": 'mutation { createProject(input: {name: "origin"}) { project { id } } }'},
        headers={"X-Request-ID": "served-1"},
    )
    project_id = made.json()["data"]["createProject"]["project"]["id"]
    query = """query($id: ID!) { history(id: $id) { edges { node {
      actor tokenName method clientAddress requestId } } } }"""
    shown = await http.post("/graphql", json={"query": query, "variables": {"id": project_id}})
    [entry] = shown.json()["data"]["history"]["edges"]
    assert entry["node"] == {
        "actor": "local-dev",
        "tokenName": None,
        "method": "development",
        "clientAddress": "127.0.0.1",
        "requestId": "served-1",
    }


@contextmanager
def two_workers(tmp_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`mlcatalog serve --workers 2` on a fresh SQLite catalog, once it answers; stopped after."""
    url = f"sqlite+aiosqlite:///{tmp_path}/catalog.db"

    async def migrated() -> None:
        database = Database(url)
        await migrate.upgrade(database)
        await database.dispose()

    asyncio.run(migrated())
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcatalog", "serve", "--port", str(port), "--workers", "2"],
        env={
            "MLCATALOG_DATABASE_URL": url,
            "PATH": "/usr/bin:/bin",
            "TMPDIR": str(tmp_path),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield process, base
    finally:
        if process.returncode is None:
            process.terminate()
            process.communicate(timeout=20)


def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (_, base):
        for _ in range(40):  # a new connection each: the workers share them out
            httpx.post(f"{base}/graphql", json={"query": "query Spread { me { name } }"})
        for _ in range(6):  # whichever worker answers the scrape counts every worker's
            text = httpx.get(f"{base}/metrics").text
            line = 'mlcatalog_graphql_requests_total{code="OK",operation="Spread"} 40.0'
            assert line in text, text[:2000]
        assert [p.name for p in tmp_path.glob("mlcatalog-metrics-*")]
    assert not list(tmp_path.glob("mlcatalog-metrics-*")), "the metrics directory is left behind"


def test_two_workers_each_listen_and_both_answer_keep_alive_clients(tmp_path: Path) -> None:
    """`serve --workers 2` gives each worker its own SO_REUSEPORT socket: the kernel spreads
    connections over both, whatever the clients do (with one shared socket, a few keep-alive
    clients could all land on one worker). The access log names the worker (pid) that answered."""
    with two_workers(tmp_path, MLCATALOG_SERVER__ACCESS_LOG="true") as (process, base):
        time.sleep(1)  # the second worker may still be starting
        clients = [httpx.Client(base_url=base) for _ in range(16)]  # 16 connections open at once
        for r in range(3):
            for n, client in enumerate(clients):  # keep-alive: each on its own connection
                answer = client.post(
                    "/graphql",
                    json={"query": "{ me { name } }"},
                    headers={"X-Request-ID": f"c{n}-r{r}"},
                )
                assert answer.status_code == 200
        for client in clients:
            client.close()
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert "one socket per worker (SO_REUSEPORT)" in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith('{"time"')]
    pids_of: dict[str, set[int]] = {}
    for line in lines:
        pids_of.setdefault(line["request_id"].split("-")[0], set()).add(line["pid"])
    assert len(pids_of) == 16, output
    # A kept-alive connection stays with its worker; the 16 connections reach both workers
    # (all on one would be a 1 in 30,000 draw of the kernel's hash).
    assert all(len(pids) == 1 for pids in pids_of.values()), pids_of
    assert len(set().union(*pids_of.values())) == 2, pids_of


def test_a_second_server_on_the_same_port_is_refused(tmp_path: Path) -> None:
    """SO_REUSEPORT must not let a second `serve` share a port a running one listens on."""
    with two_workers(tmp_path) as (_, base):
        port = base.rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "mlcatalog", "serve", "--port", port, "--workers", "2"],
            env={
                "MLCATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/catalog.db",
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        assert httpx.get(f"{base}/healthz").status_code == 200
