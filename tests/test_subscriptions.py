"""catalogEvents over a real WebSocket on a real uvicorn: order, filters, permissions, replay
after a restart, bad frames, and two processes on PostgreSQL."""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import ExecutionResult
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mlcatalog.api.context import Context
from mlcatalog.api.schema import schema
from mlcatalog.api.types.events import event_cursor
from mlcatalog.api.websocket import OverWebSocket
from mlcatalog.auth import tokens
from mlcatalog.auth.access import Policy, access_of
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.auth.sessions import Sessions
from mlcatalog.catalog import projects
from mlcatalog.events.hub import Hub, Subscriber
from mlcatalog.settings import SubscriptionSettings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, Origin
from tests.policies import policy_in
from tests.test_http import free_port

EVENTS = """subscription($after: String, $filter: CatalogEventFilter) {
  catalogEvents(after: $after, filter: $filter) {
    cursor sequence action actor project entityType before after
    entity { __typename ... on Model { name } ... on ModelVersion { number } }
  }
}"""


@dataclass
class Server:
    url: str  # the database's
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> None:
        env = {"MLCATALOG_DATABASE_URL": self.url, "PATH": "/usr/bin:/bin", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlcatalog", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"the server did not start:\n{self.process.communicate()[0].decode()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.communicate(timeout=10)
            self.process = None

    async def gql(self, query: str, token: str | None = None, **variables: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=self.base) as http:
            body = {"query": query, "variables": variables}
            answer = (await http.post("/graphql", json=body, headers=headers)).json()
        assert "errors" not in answer, answer
        return answer["data"]


async def migrated(url: str) -> str:
    database = Database(url)
    await migrate.upgrade(database)
    await database.dispose()
    return url


def sqlite_in(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'catalog.db'}"


FAST = {"MLCATALOG_SUBSCRIPTIONS__RECHECK_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = asyncio.run(migrated(sqlite_in(tmp_path_factory.mktemp("subscriptions"))))
    server = Server(url, free_port(), FAST)
    server.start()
    yield server
    server.stop()


class Client:
    """A graphql-transport-ws client, as a browser library would speak it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, server: Server, payload: dict[str, Any] | None = None) -> "Client":
        ws = await connect(server.ws, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        client = cls(ws)
        await client.send({"type": "connection_init", "payload": payload or {}})
        assert await client.receive() == {"type": "connection_ack"}
        return client

    async def send(self, message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, seconds: float = 10) -> Any:
        return json.loads(await asyncio.wait_for(self.ws.recv(), seconds))

    async def subscribe(self, id: str = "1", **variables: Any) -> None:
        payload = {"query": EVENTS, "variables": variables}
        await self.send({"type": "subscribe", "id": id, "payload": payload})
        # The hub registers this subscriber before its first read; give the task a moment.
        await asyncio.sleep(0.2)

    async def events(self, count: int, seconds: float = 10) -> list[dict[str, Any]]:
        found = []
        while len(found) < count:
            message = await self.receive(seconds)
            assert message["type"] == "next", message
            found.append(message["payload"])
        return found

    async def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            message = await self.receive(seconds)
            pytest.fail(f"unexpected {message}")

    async def close(self) -> None:
        await self.ws.close()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    client = await Client.open(server)
    yield client
    await client.close()


async def make_project(server: Server, name: str) -> None:
    await server.gql(
        f'mutation {{ createProject(input: {{name: "{name}"}}) {{ project {{ id }} }} }}'
    )


async def register(server: Server, project: str, name: str) -> str:
    data = await server.gql(
        "mutation($p: String!, $n: String!) { registerModel(input: {project: $p, name: $n})"
        " { model { id } } }",
        p=project,
        n=name,
    )
    model_id: str = data["registerModel"]["model"]["id"]
    return model_id


async def add_version(server: Server, model: str) -> None:
    await server.gql(
        "mutation($m: ID!) { createModelVersion(input: {model: $m, hyperparameters: {lr: 0.1}})"
        " { modelVersion { id } } }",
        m=model,
    )


async def test_a_subscriber_receives_each_commit_in_journal_order_with_its_entity(
    server: Server, client: Client
) -> None:
    await client.subscribe()
    await make_project(server, "order")
    model = await register(server, "order", "churn")
    await add_version(server, model)
    events = [e["data"]["catalogEvents"] for e in await client.events(3)]
    assert [e["action"] for e in events] == [
        "project.created",
        "model.registered",
        "model_version.created",
    ]
    assert events[0]["sequence"] < events[1]["sequence"] < events[2]["sequence"]
    assert events[1]["entity"] == {"__typename": "Model", "name": "churn"}
    assert events[2]["entity"] == {"__typename": "ModelVersion", "number": 1}
    assert events[1]["project"] == "order" and events[1]["actor"] == "local-dev"


async def test_filters_keep_only_the_projects_models_and_actions_asked_for(
    server: Server, client: Client
) -> None:
    await make_project(server, "filtered")
    await make_project(server, "other")
    wanted = await register(server, "filtered", "wanted")
    await client.subscribe(filter={"models": [wanted], "actions": ["model_version.created"]})
    await client.subscribe("2", filter={"projects": ["other"]})
    unwanted = await register(server, "filtered", "unwanted")
    await add_version(server, unwanted)
    await add_version(server, wanted)
    await register(server, "other", "elsewhere")
    messages = [await client.receive() for _ in range(2)]
    by_id = {m["id"]: m["payload"]["data"]["catalogEvents"] for m in messages}
    assert by_id["1"]["action"] == "model_version.created"
    assert by_id["1"]["entity"] == {"__typename": "ModelVersion", "number": 1}
    assert by_id["2"]["project"] == "other"
    await client.nothing_for(0.5)


async def viewer_token(server: Server, project: str, name: str) -> str:
    database = Database(server.url)
    try:
        created = await tokens.create(
            database,
            origin=Origin(actor="admin"),
            name=name,
            project=project,
            role="viewer",
            days=1,
            max_days=365,
        )
    finally:
        await database.dispose()
    return created.token


async def test_a_viewer_gets_sensitive_changes_forbidden_and_no_hidden_project(
    server: Server,
) -> None:
    await make_project(server, "seen")
    await make_project(server, "hidden")
    token = await viewer_token(server, "seen", "viewer-seen")
    viewer = await Client.open(server, {"Authorization": f"Bearer {token}"})
    try:
        await viewer.subscribe()
        await register(server, "hidden", "secret")
        await register(server, "seen", "public")
        [event] = await viewer.events(1)
        data = event["data"]["catalogEvents"]
        assert data["project"] == "seen" and data["entity"] == {
            "__typename": "Model",
            "name": "public",
        }
        assert data["before"] is None and data["after"] is None
        codes = {(e["path"][-1], e["extensions"]["code"]) for e in event["errors"]}
        assert codes == {("before", "FORBIDDEN"), ("after", "FORBIDDEN")}
        await viewer.nothing_for(0.5)
    finally:
        await viewer.close()


async def test_a_revoked_token_ends_the_open_stream(server: Server) -> None:
    await make_project(server, "revoking")
    token = await viewer_token(server, "revoking", "short-lived")
    viewer = await Client.open(server, {"Authorization": f"Bearer {token}"})
    try:
        await viewer.subscribe()
        database = Database(server.url)
        try:
            await tokens.revoke(database, origin=Origin(actor="admin"), name="short-lived")
        finally:
            await database.dispose()
        assert await ending(viewer) == "UNAUTHENTICATED"
        assert (await viewer.receive(5))["type"] == "complete"
    finally:
        await viewer.close()


async def test_reconnecting_with_a_cursor_after_a_restart_misses_nothing(
    tmp_path: Path,
) -> None:
    server = Server(await migrated(sqlite_in(tmp_path)), free_port(), FAST)
    server.start()
    try:
        client = await Client.open(server)
        await client.subscribe()
        await make_project(server, "restart")
        [first] = await client.events(1)
        cursor = first["data"]["catalogEvents"]["cursor"]
        model = await register(server, "restart", "before-restart")
        await client.close()
        server.stop()
        # Written while no server runs: the journal is the source, not the server's memory.
        database = Database(server.url)
        try:
            await tokens.create(
                database,
                origin=Origin(actor="admin"),
                name="offline",
                project="restart",
                role="viewer",
                days=1,
                max_days=9,
            )
        finally:
            await database.dispose()
        server.start()
        client = await Client.open(server)
        await client.subscribe(after=cursor)
        replayed = [e["data"]["catalogEvents"]["action"] for e in await client.events(2)]
        assert replayed == ["model.registered", "api_token.created"]
        await add_version(server, model)
        [live] = await client.events(1)
        assert live["data"]["catalogEvents"]["action"] == "model_version.created"
        await client.nothing_for(0.5)
        await client.close()
    finally:
        server.stop()


async def test_replay_switches_to_live_without_gap_or_duplicate(
    server: Server, client: Client
) -> None:
    await client.subscribe("0", filter={"projects": ["switch"]})
    await make_project(server, "switch")
    [start] = await client.events(1)
    after = start["data"]["catalogEvents"]["cursor"]
    await client.send({"type": "complete", "id": "0"})
    # Writes before, during and after the replay: each arrives once, in journal order.
    writes = asyncio.gather(*(register(server, "switch", f"m{i}") for i in range(20)))
    await asyncio.sleep(0.05)
    await client.subscribe("1", after=after, filter={"projects": ["switch"]})
    await writes
    events = [e["data"]["catalogEvents"] for e in await client.events(20)]
    assert sorted(e["entity"]["name"] for e in events) == sorted(f"m{i}" for i in range(20))
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences)
    await client.nothing_for(0.5)


async def ending(client: Client) -> str:
    """The code of the error that ends a stream (the revocation's own event may come first)."""
    for _ in range(3):
        message = await client.receive(5)
        assert message["type"] == "next", message
        if message["payload"]["data"] is None:  # an event's FORBIDDEN fields leave its data
            code: str = message["payload"]["errors"][0]["extensions"]["code"]
            return code
    pytest.fail("the stream did not end")


async def closed(client: Client) -> int:
    with pytest.raises(ConnectionClosed) as closing:
        await client.receive(5)
    code: int = closing.value.rcvd.code if closing.value.rcvd else 0
    return code


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", 4400),
        ("[1, 2]", 4400),
        ('{"type": "unknown"}', 4400),
        ('{"type": "subscribe", "id": "1", "payload": []}', 4400),
        ('{"type": "connection_init"}', 4429),
        ("x" * 70_000, 1009),
    ],
)
async def test_bad_frames_close_the_connection_with_the_protocols_code(
    server: Server, message: str, code: int
) -> None:
    client = await Client.open(server)
    await client.ws.send(message)
    assert await closed(client) == code
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server.base}/healthz")).status_code == 200


async def test_subscribe_before_connection_init_is_unauthorized(server: Server) -> None:
    ws = await connect(server.ws, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    client = Client(ws)
    await client.send({"type": "subscribe", "id": "1", "payload": {"query": EVENTS}})
    assert await closed(client) == 4401


async def test_an_invalid_cursor_is_an_error_for_that_operation_only(
    server: Server, client: Client
) -> None:
    await client.subscribe(after="bm90IGEgY3Vyc29y")
    message = await client.receive()
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


async def test_a_syntax_error_is_an_error_for_that_operation_only(
    server: Server, client: Client
) -> None:
    await client.send({"type": "subscribe", "id": "s", "payload": {"query": "subscription {"}})
    message = await client.receive()
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


async def test_queries_are_refused_over_the_websocket(server: Server, client: Client) -> None:
    await client.send({"type": "subscribe", "id": "q", "payload": {"query": "{ me { name } }"}})
    message = await client.receive()
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


async def test_subscriptions_per_connection_are_bounded(server: Server, client: Client) -> None:
    for i in range(10):
        await client.send({"type": "subscribe", "id": str(i), "payload": {"query": EVENTS}})
    await client.send({"type": "subscribe", "id": "10", "payload": {"query": EVENTS}})
    message = await client.receive()
    assert message == {
        "id": "10",
        "type": "error",
        "payload": [{"message": "Subscription limit reached"}],
    }


def test_a_full_queue_overflows_instead_of_growing() -> None:
    subscriber = Subscriber(start=0, size=2, accepts=lambda _: True)
    subscriber.offer([object(), object()])  # type: ignore[list-item]
    assert not subscriber.overflowed and len(subscriber.events) == 2
    subscriber.offer([object()])  # type: ignore[list-item]
    assert subscriber.overflowed and not subscriber.events


async def test_the_older_graphql_ws_protocol_streams_too(server: Server) -> None:
    async with connect(server.ws, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        start = {"type": "start", "id": "1", "payload": {"query": EVENTS}}
        await ws.send(json.dumps(start))
        await asyncio.sleep(0.2)
        await make_project(server, "legacy")
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "data"
        assert message["payload"]["data"]["catalogEvents"]["project"] == "legacy"


async def test_the_older_protocol_takes_one_connection_init_per_socket(server: Server) -> None:
    # Each init took a place among the principal's 20 WebSockets and the close gave back one:
    # 20 inits would have locked local-dev out. A second init is refused, as in the newer protocol.
    init = json.dumps({"type": "connection_init", "payload": {}})
    for _ in range(2):
        async with connect(server.ws, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(init)
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for _ in range(19):
                await ws.send(init)
            with pytest.raises(ConnectionClosed) as closing:
                await asyncio.wait_for(ws.recv(), 5)
            assert closing.value.rcvd is not None and closing.value.rcvd.code == 4429
        await asyncio.sleep(0.2)  # the server sees the close
    client = await Client.open(server)  # local-dev still connects
    await client.close()


async def test_two_processes_on_postgresql_deliver_to_subscribers_on_both(postgres: Any) -> None:
    url = await migrated(postgres.create_database("mlcatalog_subscriptions"))
    one, two = Server(url, free_port(), {}), Server(url, free_port(), {})
    one.start()
    two.start()
    try:
        on_one, on_two = await Client.open(one), await Client.open(two)
        await on_one.subscribe()
        await on_two.subscribe()
        await make_project(one, "first")  # written through one process
        await make_project(two, "second")  # and through the other
        for client in (on_one, on_two):
            events = [e["data"]["catalogEvents"]["project"] for e in await client.events(2)]
            assert events == ["first", "second"]
            await client.close()
    finally:
        one.stop()
        two.stop()
        postgres.drop_database("mlcatalog_subscriptions")


async def test_a_policy_change_reaches_the_open_stream(tmp_path: Path) -> None:
    policy = policy_in(tmp_path / "policy", "").policy.parent
    env = {**FAST, "MLCATALOG_AUTH__POLICY_DIR": str(policy)}
    server = Server(await migrated(sqlite_in(tmp_path)), free_port(), env)
    server.start()
    try:
        await make_project(server, "governed")
        token = await viewer_token(server, "governed", "governed-viewer")
        viewer = await Client.open(server, {"Authorization": f"Bearer {token}"})
        await viewer.subscribe()
        await register(server, "governed", "seen-before")
        [event] = await viewer.events(1)
        assert event["data"]["catalogEvents"]["entity"]["name"] == "seen-before"
        csv = policy / "policy.csv"
        csv.write_text(
            csv.read_text().replace("p, viewer, *, Subscription.catalogEvents, read\n", "")
        )
        await asyncio.sleep(2.5)  # the watcher reloads within a second; streams recheck at 0.5 s
        await register(server, "governed", "unseen-after")
        await viewer.nothing_for(1.5)
        await viewer.close()
    finally:
        server.stop()


async def test_websockets_per_principal_are_bounded(server: Server) -> None:
    # 20 per principal (subscriptions.connections_per_principal); all of these are local-dev.
    clients = [await Client.open(server) for _ in range(20)]
    try:
        ws = await connect(server.ws, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        extra = Client(ws)
        await extra.send({"type": "connection_init", "payload": {}})
        assert await closed(extra) == 4403
        await clients.pop().close()
        await asyncio.sleep(0.2)  # the server sees the close
        clients.append(await Client.open(server))
    finally:
        for client in clients:
            await client.close()


async def test_a_subscriber_that_falls_behind_is_stopped_with_its_resume_cursor(
    database: Database,
) -> None:
    # In process: the hub offers while the stream is not read, as a slow client's would be.
    hub = Hub(database, batch=500, poll_seconds=5)
    stop = asyncio.Event()
    tailing = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.sleep(0.3)
        context = Context(
            database=database, actor="t", hub=hub, subscriptions=SubscriptionSettings(queue_size=2)
        )
        results = await OverWebSocket(schema).stream(
            "subscription { catalogEvents { cursor project } }", context_value=context
        )
        await make_projects(database, "first")
        first = await asyncio.wait_for(anext(results), 5)
        assert first.data is not None and first.data["catalogEvents"]["project"] == "first"
        cursor = first.data["catalogEvents"]["cursor"]
        await make_projects(database, "a", "b", "c")  # three, for a queue of two
        await asyncio.sleep(0.5)
        stopped = await asyncio.wait_for(anext(results), 5)
        [error] = stopped.errors
        assert error.extensions == {"code": "FAILED_PRECONDITION"}
        assert cursor in error.message
    finally:
        stop.set()
        await tailing


async def test_entries_of_no_project_go_only_to_readers_of_the_whole_audit_log(
    database: Database, tmp_path: Path
) -> None:
    # Sessions, tokens and policy reloads belong to no project: seeing every project (a viewer
    # of `*`) is not reading the audit log, which shows them.
    people = "g, user:vic, viewer, *\ng, user:aud, auditor, *\n"
    policy = Policy(policy_in(tmp_path / "policy", people))
    hub = Hub(database, batch=500, poll_seconds=5)
    stop = asyncio.Event()
    tailing = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.sleep(0.3)
        await Sessions(database, hours=1).start(Principal(subject="vic", method=Method.SESSION))

        async def stream(subject: str) -> AsyncIterator[Any]:
            principal = Principal(subject=subject, method=Method.BEARER)
            context = Context(
                database=database,
                actor=subject,
                hub=hub,
                subscriptions=SubscriptionSettings(),
                access=access_of(policy, principal),
            )
            results = await OverWebSocket(schema).stream(
                "subscription($after: String) { catalogEvents(after: $after) { action } }",
                context_value=context,
                variable_values={"after": event_cursor(0)},  # the replay, then live
            )
            assert not isinstance(results, ExecutionResult), results
            return results

        async def action(results: AsyncIterator[Any]) -> str:
            result = await asyncio.wait_for(anext(results), 5)
            assert result.data is not None, result.errors
            return str(result.data["catalogEvents"]["action"])

        vic = await stream("vic")
        await make_projects(database, "replayed")
        assert await action(vic) == "project.created"  # replayed: its session left out in SQL
        await Sessions(database, hours=1).start(Principal(subject="aud", method=Method.SESSION))
        await make_projects(database, "live")
        assert await action(vic) == "project.created"  # live: the hub's session left out
        aud = await stream("aud")
        assert [await action(aud) for _ in range(4)] == [
            "session.started",
            "project.created",
            "session.started",
            "project.created",
        ]
    finally:
        stop.set()
        await tailing


async def make_projects(database: Database, *names: str) -> None:
    for name in names:
        async with database.unit_of_work(Origin(actor="t")) as uow:
            await projects.create_project(uow, name=name, description=None)


async def test_a_browser_session_authenticates_its_websocket_and_nothing_else_does(
    tmp_path: Path,
) -> None:
    # An issuer (never reached: sessions are read from the database) turns the development
    # user off, as in production; browser login reads the session cookie.
    policy = policy_in(tmp_path / "policy", "g, user:carol, viewer, *\n").policy.parent
    env = {
        **FAST,
        "MLCATALOG_AUTH__ISSUER": "http://127.0.0.1:9/issuer",
        "MLCATALOG_AUTH__AUDIENCE": "mlcatalog",
        "MLCATALOG_AUTH__CLIENT_ID": "mlcatalog",
        "MLCATALOG_AUTH__COOKIE_SECURE": "false",
        "MLCATALOG_AUTH__POLICY_DIR": str(policy),
    }
    server = Server(await migrated(sqlite_in(tmp_path)), free_port(), env)
    database = Database(server.url)
    sessions = Sessions(database, hours=1)
    started = await sessions.start(Principal(subject="carol", method=Method.SESSION))
    server.start()
    try:
        cookie = {"Cookie": f"mlcatalog_session={started.cookie}"}
        ws = await connect(
            server.ws, subprotocols=["graphql-transport-ws"], additional_headers=cookie
        )  # type: ignore[list-item]
        carol = Client(ws)
        await carol.send({"type": "connection_init", "payload": {}})
        assert await carol.receive() == {"type": "connection_ack"}
        await carol.close()

        anonymous = Client(await connect(server.ws, subprotocols=["graphql-transport-ws"]))  # type: ignore[list-item]
        await anonymous.send({"type": "connection_init", "payload": {}})
        assert await closed(anonymous) == 4403

        # A page of another origin cannot ride the cookie: the handshake is refused.
        elsewhere = {**cookie, "Origin": "https://evil.example"}
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                server.ws, subprotocols=["graphql-transport-ws"], additional_headers=elsewhere
            )  # type: ignore[list-item]
        assert refused.value.response.status_code == 403

        # A session that ends ends its open stream.
        ws = await connect(
            server.ws, subprotocols=["graphql-transport-ws"], additional_headers=cookie
        )  # type: ignore[list-item]
        carol = Client(ws)
        await carol.send({"type": "connection_init", "payload": {}})
        assert await carol.receive() == {"type": "connection_ack"}
        await carol.subscribe()
        assert await sessions.end(started.cookie)
        assert await ending(carol) == "UNAUTHENTICATED"
        await carol.close()
    finally:
        server.stop()
        await database.dispose()


async def test_a_stop_ends_the_hub_at_once_not_at_its_next_poll(database: Database) -> None:
    # Every app's shutdown waits for its hub: each test's lifespan paid a whole poll before.
    hub = Hub(database, batch=500, poll_seconds=30)
    stop = asyncio.Event()
    tailing = asyncio.create_task(hub.run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(tailing, 2)
