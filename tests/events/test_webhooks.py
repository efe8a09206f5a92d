"""Webhooks end to end: hooks made through GraphQL, events delivered from the journal by the
worker to a real receiver on 127.0.0.1, signed, in order, retried, disabled; private addresses
refused; secrets never shown twice; viewers see no hooks."""

import asyncio
import contextlib
import ipaddress
import json
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mlcatalog.app import create_app
from mlcatalog.auth.access import Policy, access_of
from mlcatalog.auth.authenticate import DevelopmentUser
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.events.outbound import Attempt, Sender, forbidden_kind
from mlcatalog.events.webhooks import SIGNATURE_HEADER, WebhookWorker, sign, verify
from mlcatalog.settings import SearchSettings, Settings, WebhookSettings
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import JournalRow, WebhookDeliveryRow, WebhookRow, utcnow
from tests import factories
from tests.conftest import Api
from tests.events.receiver import Receiver
from tests.policies import policy_in

SECRET = "a-test-secret-of-32-characters!!"
LOCAL = WebhookSettings(
    allow_networks=["127.0.0.1/32"], backoff_seconds=0.001, max_backoff_seconds=0.002
)
CREATE = """
mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { secret webhook { id url actions enabled deliveredThrough } }
}"""
HOOKS = """
{ projects(first: 5) { edges { node { webhooks(first: 5) { edges { node {
  id url actions stages models includeChanges enabled consecutiveFailures deliveredThrough
  nextAttemptAt createdBy
  deliveries(first: 50) { edges { node { eventId action attempt statusCode error durationMs at } } }
} } } } } } }"""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def local(api: Api) -> Api:
    """The API with deliveries to 127.0.0.1 allowed, as the tests' receiver needs."""
    return Api(api.database, webhooks=LOCAL)


@pytest.fixture
async def watched(local: Api, receiver: Receiver) -> dict[str, Any]:
    """Project fraud with a hook on model registrations that posts to the receiver."""
    await factories.project(local, "fraud")
    return await hook(local, receiver.url)


async def hook(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    actions = fields.pop("actions", ["model.registered"])
    data = await api(CREATE, input={"project": "fraud", "url": url, "actions": actions, **fields})
    return dict(data["createWebhook"])


async def deliver(database: Database, settings: WebhookSettings = LOCAL) -> WebhookWorker:
    """Run a worker until it has nothing left to do now (retries included)."""
    worker = WebhookWorker(database, settings)
    try:
        for _ in range(200):
            if not await worker.run_once() and not await worker.due():
                break
            await asyncio.sleep(0.003)  # past the tests' millisecond backoff
    finally:
        await worker.close()
    return worker


PING = """
mutation($id: ID!) {
  testWebhook(input: {id: $id}) { delivery { eventId action attempt statusCode error } }
}"""


async def ping(api: Api, made: dict[str, Any]) -> dict[str, Any]:
    data = await api(PING, id=made["webhook"]["id"])
    return dict(data["testWebhook"]["delivery"])


async def hooks(api: Api) -> list[dict[str, Any]]:
    data = await api(HOOKS)
    edges = data["projects"]["edges"][0]["node"]["webhooks"]["edges"]
    return [edge["node"] for edge in edges]


async def test_a_receiver_gets_each_event_signed_in_journal_order(
    local: Api, receiver: Receiver
) -> None:
    await factories.project(local, "fraud")
    made = await hook(local, receiver.url, secret=SECRET)
    assert made["secret"] == SECRET
    for name in ("a", "b", "c"):
        await factories.model(local, name)
    await deliver(local.database)

    assert [r.event["entity"]["type"] for r in receiver.received] == ["Model"] * 3
    ids = [r.event["id"] for r in receiver.received]
    assert ids == sorted(ids) and len(set(ids)) == 3
    for got in receiver.received:
        assert verify(SECRET, got.headers[SIGNATURE_HEADER.lower()], got.body)
        assert not verify(
            "another secret of enough length", got.headers["x-mlcatalog-signature"], got.body
        )
        assert got.headers["x-mlcatalog-event"] == "model.registered"
        assert got.headers["x-mlcatalog-delivery"] == str(got.event["id"])
        assert got.event["project"] == "fraud" and got.event["actor"] == "tester"
        assert "changes" not in got.event  # before/after only for hooks made to include them
    # The worker's signature is HMAC-SHA256 over "<t>.<body>", as documented.
    header = receiver.received[0].headers["x-mlcatalog-signature"]
    timestamp = int(header.split(",")[0][2:])
    assert header == sign(SECRET, timestamp, receiver.received[0].body)
    [shown] = await hooks(local)
    assert shown["deliveredThrough"] >= max(ids)
    assert [d["node"]["statusCode"] for d in shown["deliveries"]["edges"]] == [200] * 3


async def test_a_failed_event_is_retried_and_holds_back_the_later_ones(
    local: Api, receiver: Receiver
) -> None:
    await factories.project(local, "fraud")
    await hook(local, receiver.url, secret=SECRET)
    await factories.model(local, "first")
    await factories.model(local, "second")
    # Two server errors, then a redirect (never followed: a failure too), then success.
    receiver.script = deque([500, 500, 302])
    await deliver(local.database)

    names = [r.event["id"] for r in receiver.received]
    first, second = names[0], names[-1]
    assert names == [first, first, first, first, second]
    assert all(
        verify(SECRET, r.headers["x-mlcatalog-signature"], r.body) for r in receiver.received
    )
    [shown] = await hooks(local)
    attempts = [
        (d["node"]["eventId"], d["node"]["attempt"], d["node"]["statusCode"], d["node"]["error"])
        for d in reversed(shown["deliveries"]["edges"])  # newest first
    ]
    assert attempts == [
        (first, 1, 500, "HTTP 500"),
        (first, 2, 500, "HTTP 500"),
        (first, 3, 302, "HTTP 302"),
        (first, 4, 200, None),
        (second, 1, 200, None),
    ]
    assert shown["consecutiveFailures"] == 0 and shown["enabled"]


async def test_a_hook_is_disabled_after_its_run_of_failures_and_that_is_journaled(
    local: Api, receiver: Receiver
) -> None:
    await factories.project(local, "fraud")
    made = await hook(local, receiver.url)
    await factories.model(local, "first")
    receiver.status = 503
    await deliver(local.database, LOCAL.model_copy(update={"max_failures": 3}))

    assert len(receiver.received) == 3
    [shown] = await hooks(local)
    assert not shown["enabled"] and shown["consecutiveFailures"] == 3
    async with local.database.read() as session:
        disabled = (
            await session.scalars(select(JournalRow).where(JournalRow.action == "webhook.disabled"))
        ).one()
    assert disabled.actor == "webhooks"
    assert disabled.changes["after"]["failures"] == 3
    assert disabled.changes["after"]["last_error"] == "HTTP 503"

    # Enabled again, it retries at once and delivers what it could not.
    receiver.status = 200
    data = await local(
        "mutation($id: ID!) { updateWebhook(input: {id: $id, enabled: true}) { webhook { enabled consecutiveFailures nextAttemptAt } } }",
        id=made["webhook"]["id"],
    )
    assert data["updateWebhook"]["webhook"] == {
        "enabled": True,
        "consecutiveFailures": 0,
        "nextAttemptAt": None,
    }
    await deliver(local.database)
    assert [r.event["id"] for r in receiver.received][-1] == disabled.changes["after"]["seq"]
    [shown] = await hooks(local)
    assert shown["enabled"] and shown["consecutiveFailures"] == 0


async def test_filters_by_action_stage_and_model(local: Api, receiver: Receiver) -> None:
    await factories.project(local, "fraud")
    watched = await factories.model(local, "watched")
    other = await factories.model(local, "other")
    await hook(
        local,
        receiver.url,
        actions=["model_version.stage_changed"],
        stages=["PRODUCTION"],
        models=[watched["id"]],
    )
    stage = "mutation($id: ID!, $s: Stage!) { setModelVersionStage(input: {id: $id, stage: $s}) { modelVersion { id } } }"
    for model in (watched, other):
        version = await factories.version(local, model["id"])
        for step in ("DEVELOPMENT", "STAGING", "PRODUCTION"):
            await local(stage, id=version["id"], s=step)
    await deliver(local.database)

    assert [(r.event["action"], r.event["entity"]["type"]) for r in receiver.received] == [
        ("model_version.stage_changed", "ModelVersion")
    ]


async def test_an_event_carries_before_and_after_only_when_the_hook_asks(
    local: Api, receiver: Receiver
) -> None:
    await factories.project(local, "fraud")
    await hook(local, receiver.url, includeChanges=True)
    await factories.model(local, "detector", description="finds fraud")
    await deliver(local.database)
    [got] = receiver.received
    assert got.event["changes"]["after"]["name"] == "detector"


async def test_two_workers_deliver_each_event_once(local: Api, receiver: Receiver) -> None:
    await factories.project(local, "fraud")
    await hook(local, receiver.url)
    for i in range(5):
        await factories.model(local, f"m{i}")
    one, two = WebhookWorker(local.database, LOCAL), WebhookWorker(local.database, LOCAL)
    try:
        await asyncio.gather(one.run_once(), two.run_once(), one.run_once(), two.run_once())
        await one.run_once()
    finally:
        await one.close()
        await two.close()
    ids = [r.event["id"] for r in receiver.received]
    assert len(ids) == 5 and ids == sorted(set(ids))


async def test_test_webhook_sends_a_signed_ping_and_answers_the_attempt(
    local: Api, receiver: Receiver
) -> None:
    await factories.project(local, "fraud")
    made = await hook(local, receiver.url)
    delivery = await ping(local, made)
    assert delivery["action"] == "webhook.ping" and delivery["eventId"] is None
    assert delivery["statusCode"] == 200 and delivery["error"] is None
    [got] = receiver.received
    assert verify(made["secret"], got.headers["x-mlcatalog-signature"], got.body)
    assert got.event["action"] == "webhook.ping"
    [shown] = await hooks(local)
    assert shown["deliveries"]["edges"][0]["node"]["action"] == "webhook.ping"
    assert shown["consecutiveFailures"] == 0  # a ping is no event: it moves nothing
    # A hook goes with its deliveries.
    await local(
        "mutation($id: ID!) { deleteWebhook(input: {id: $id}) { deletedId } }",
        id=made["webhook"]["id"],
    )
    assert await hooks(local) == []
    async with local.database.read() as session:
        assert (await session.scalars(select(WebhookDeliveryRow))).all() == []


async def test_private_addresses_are_refused_without_the_setting(
    api: Api, receiver: Receiver
) -> None:
    await factories.project(api, "fraud")
    made = await hook(api, receiver.url)
    delivery = await ping(api, made)
    assert (delivery["statusCode"], delivery["error"]) == (
        None,
        "refused: the host resolves to a non-public address",  # which one: the log only
    )
    await factories.model(api, "detector")
    await deliver(api.database, WebhookSettings(backoff_seconds=10))
    assert receiver.received == []
    sender = Sender(WebhookSettings())
    try:
        refused = await sender.post(f"http://localhost:{receiver.port}/", b"{}", {})
        # The error is read through the API: it names no address (no map of internal DNS).
        assert refused.error == "refused: the host resolves to a non-public address"
        assert (await sender.post("ftp://example.org/", b"{}", {})).error == (
            "refused: only http and https URLs"
        )
    finally:
        await sender.close()
    assert receiver.received == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 wrapping 10.0.0.1
        ("fec0::1", "site-local"),
        ("2002:5db8:d70e::", None),  # 6to4 wrapping a public address
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_what_counts_as_a_forbidden_address(address: str, kind: str | None) -> None:
    assert forbidden_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_secret_never_appears_in_the_journal_or_graphql_after_creation(
    local: Api, receiver: Receiver
) -> None:
    await factories.project(local, "fraud")
    made = await hook(local, receiver.url)
    secret = made["secret"]
    assert len(secret) >= 32
    new_secret = "a-rotated-secret-of-enough-length"
    await local(
        "mutation($id: ID!, $s: String!) { updateWebhook(input: {id: $id, secret: $s}) { webhook { id } } }",
        id=made["webhook"]["id"],
        s=new_secret,
    )
    await ping(local, made)
    seen = json.dumps(await hooks(local))
    seen += json.dumps(
        await local("{ auditLog(first: 100) { edges { node { action before after } } } }")
    )
    async with local.database.read() as session:
        seen += json.dumps([row.changes for row in await session.scalars(select(JournalRow))])
    assert "webhook.updated" in seen and '"secret_changed": true' in seen
    assert secret not in seen and new_secret not in seen
    # The ping was signed with the new secret.
    assert verify(
        new_secret,
        receiver.received[-1].headers["x-mlcatalog-signature"],
        receiver.received[-1].body,
    )


PEOPLE = """
g, user:mia, maintainer, fraud
g, user:vic, viewer, fraud
g, user:cody, contributor, fraud
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_maintainers_manage_hooks_and_viewers_do_not_see_them(
    local: Api, receiver: Receiver, tmp_path: Path
) -> None:
    policy = Policy(policy_in(tmp_path / "policies", PEOPLE))

    def as_user(subject: str) -> Api:
        principal = Principal(subject=subject, method=Method.BEARER)
        return Api(
            local.database, actor=subject, access=access_of(policy, principal), webhooks=LOCAL
        )

    await factories.project(local, "fraud")
    maintainer, viewer, contributor = as_user("mia"), as_user("vic"), as_user("cody")
    made = await hook(maintainer, receiver.url)
    assert len(await hooks(maintainer)) == 1

    query = "{ projects(first: 5) { edges { node { name webhooks(first: 5) { edges { node { url } } } } } } }"
    for outsider in (viewer, contributor):
        result = await outsider.run(query)
        assert result.data["projects"]["edges"][0]["node"]["name"] == "fraud"
        assert [e.extensions["code"] for e in result.errors] == ["FORBIDDEN"]
        node = await outsider.run(
            "query($id: ID!) { node(id: $id) { ... on Webhook { url } } }", id=made["webhook"]["id"]
        )
        assert node.errors and node.errors[0].extensions["code"] == "FORBIDDEN"
        code, _ = await outsider.error(
            CREATE, input={"project": "fraud", "url": receiver.url, "actions": ["model.registered"]}
        )
        assert code == "FORBIDDEN"
        code, _ = await outsider.error(
            "mutation($id: ID!) { testWebhook(input: {id: $id}) { delivery { statusCode } } }",
            id=made["webhook"]["id"],
        )
        assert code == "FORBIDDEN"
    assert receiver.received == []
    await maintainer(
        "mutation($id: ID!) { deleteWebhook(input: {id: $id}) { deletedId } }",
        id=made["webhook"]["id"],
    )
    assert await hooks(maintainer) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_only_admins_make_or_redirect_a_hook_that_includes_changes(
    local: Api, receiver: Receiver, tmp_path: Path
) -> None:
    # before/after are sensitive: a hook that sends them is a way to read them, so making one
    # (or pointing one elsewhere) needs `write` on the sensitive class, which maintainers lack.
    policy = Policy(policy_in(tmp_path / "policies", PEOPLE + "g, user:ada, admin, *\n"))

    def as_user(subject: str) -> Api:
        principal = Principal(subject=subject, method=Method.BEARER)
        return Api(
            local.database, actor=subject, access=access_of(policy, principal), webhooks=LOCAL
        )

    await factories.project(local, "fraud")
    mia, ada = as_user("mia"), as_user("ada")
    fields = {"project": "fraud", "url": receiver.url, "actions": ["model.registered"]}
    code, message = await mia.error(CREATE, input={**fields, "includeChanges": True})
    assert code == "FORBIDDEN" and "Webhook.includeChanges" in message
    plain = await hook(mia, receiver.url)
    update = (
        "mutation($input: UpdateWebhookInput!) { updateWebhook(input: $input) { webhook { id } } }"
    )
    code, _ = await mia.error(update, input={"id": plain["webhook"]["id"], "includeChanges": True})
    assert code == "FORBIDDEN"
    full = await hook(ada, receiver.url, includeChanges=True)
    elsewhere = {"id": full["webhook"]["id"], "url": receiver.url + "elsewhere"}
    for change in (elsewhere, {"id": full["webhook"]["id"], "secret": SECRET}):
        code, _ = await mia.error(update, input=change)
        assert code == "FORBIDDEN"
    # What does not change where the changes go stays the maintainer's.
    await mia(update, input={"id": full["webhook"]["id"], "actions": ["model.updated"]})
    await mia(update, input={"id": plain["webhook"]["id"], "url": receiver.url + "elsewhere"})
    await ada(update, input=elsewhere)


async def test_bad_hooks_are_refused_with_a_code(local: Api) -> None:
    await factories.project(local, "fraud")
    for fields, message in (
        ({"url": "file:///etc/passwd"}, "url must be an absolute http or https URL"),
        ({"url": "https://user:pw@example.org/"}, "url must not hold a user name or password"),
        ({"actions": ["model.exploded"]}, "actions: 'model.exploded' is not a journal action"),
        ({"actions": []}, "actions must name 1 to 50 actions"),
        ({"secret": "short"}, "secret must be 16 to 200 printable characters"),
    ):
        input = {
            "project": "fraud",
            "url": "https://hooks.example.org/",
            "actions": ["model.registered"],
        }
        code, got = await local.error(CREATE, input={**input, **fields})
        assert (code, got) == ("INVALID_ARGUMENT", message)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("watched")
async def test_the_app_delivers_from_its_lifespan(
    local: Api, receiver: Receiver, database_url: str
) -> None:
    settings = Settings(
        database_url=database_url,
        search=SearchSettings(serve_indexer=False),
        webhooks=LOCAL.model_copy(update={"poll_seconds": 0.05}),
    )
    app = create_app(settings, authenticator=DevelopmentUser(settings.auth.dev_user))
    async with app.router.lifespan_context(app):
        await factories.model(local, "detector")
        await asyncio.wait_for(receiver.arrived.wait(), 10)
    [got] = receiver.received
    assert got.event["action"] == "model.registered"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("watched")
async def test_mlcatalog_webhooks_run_delivers_until_stopped(
    local: Api, receiver: Receiver, database_url: str
) -> None:
    await factories.model(local, "detector")
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mlcatalog",
        "webhooks",
        "run",
        env={
            "MLCATALOG_DATABASE_URL": database_url,
            "MLCATALOG_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]',
            "MLCATALOG_WEBHOOKS__POLL_SECONDS": "0.05",
            "PATH": "/usr/bin:/bin",
        },
    )
    try:
        await asyncio.wait_for(receiver.arrived.wait(), 30)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0
    assert [r.event["action"] for r in receiver.received] == ["model.registered"]


async def test_an_allowed_name_is_called_at_its_checked_address_with_its_host(
    receiver: Receiver,
) -> None:
    sender = Sender(LOCAL)
    try:
        sent = await sender.post(f"http://localhost:{receiver.port}/x", b"{}", {})
    finally:
        await sender.close()
    assert (sent.status_code, sent.error) == (200, None)
    [got] = receiver.received
    assert got.headers["host"] == f"localhost:{receiver.port}"


async def sent_to(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    settings: WebhookSettings = LOCAL,
) -> Attempt:
    """One POST to a raw server on 127.0.0.1 that answers as ``handler`` does."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = Sender(settings)
    try:
        return await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})
    finally:
        await sender.close()
        server.close()


async def test_a_receiver_that_does_not_answer_is_a_timed_failure() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        await asyncio.sleep(5)
        writer.close()

    sent = await sent_to(hold, LOCAL.model_copy(update={"timeout_seconds": 0.2}))
    assert (sent.status_code, sent.error) == (None, "no answer within 0.2 s")
    assert sent.duration_ms < 2000


async def test_a_large_answer_is_read_no_further_than_the_cap() -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(10_000):  # 10 GB, were it all read
                writer.write(b"x" * 1_000_000)
                await writer.drain()
        writer.close()

    sent = await sent_to(flood)
    assert (sent.status_code, sent.error) == (200, None)
    assert sent.duration_ms < 5000


@pytest.mark.usefixtures("watched")
async def test_a_dead_worker_s_lease_runs_out_and_another_delivers(
    local: Api, receiver: Receiver
) -> None:
    await factories.model(local, "detector")
    dead = WebhookWorker(local.database, LOCAL)
    [hook_id] = await dead.due()
    assert await dead.claim(hook_id) is not None  # and then it died, holding the lease
    await dead.close()
    other = WebhookWorker(local.database, LOCAL)
    try:
        assert await other.due() == [] and await other.serve(hook_id) == 0
        async with local.database.unit_of_work(Origin(actor="clock")) as uow:
            await uow.session.execute(
                update(WebhookRow).values(lease_until=utcnow() - timedelta(seconds=1))
            )
        assert await other.serve(hook_id) == 1
    finally:
        await other.close()
    assert [r.event["action"] for r in receiver.received] == ["model.registered"]
