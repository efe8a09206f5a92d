"""The HTTP edge, on a real uvicorn: GraphiQL, health, body limits, errors without a 500."""

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from mlcatalog.store import schema as migrations
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

    async def migrate() -> None:
        database = Database(url)
        await migrations.upgrade(database)
        await database.dispose()

    asyncio.run(migrate())
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


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    process = start_server(f"sqlite+aiosqlite:///{tmp_path}/empty.db", free_port())
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 1
    assert "mlcatalog migrate" in output
