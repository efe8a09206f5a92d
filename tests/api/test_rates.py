"""Rate limits per principal: the bucket's arithmetic and memory bound in process, then over HTTP
the refused mutation (429, Retry-After, RATE_LIMITED with retryAfter, nothing changed), another
principal untouched, cheap reads never limited, and the refill after the wait, on a clock the
test moves."""

import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlcatalog.api.rates import RateLimits, TokenBuckets
from mlcatalog.app import create_app
from mlcatalog.settings import LimitsSettings, SearchSettings, Settings
from mlcatalog.store.database import Database
from tests.auth.test_tokens import make


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- the buckets, in process ----


def test_a_bucket_pays_a_minute_s_worth_then_says_how_long_to_wait() -> None:
    clock = Clock()
    buckets = TokenBuckets(3, most_subjects=10, clock=clock)
    assert [buckets.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("alice") == pytest.approx(20.0)  # 3 a minute: one every 20 s
    clock.now += 5
    assert buckets.take("alice") == pytest.approx(15.0)  # a refusal takes nothing


def test_a_bucket_refills_with_time_up_to_its_size() -> None:
    clock = Clock()
    buckets = TokenBuckets(3, most_subjects=10, clock=clock)
    for _ in range(3):
        buckets.take("alice")
    clock.now += 20
    assert buckets.take("alice") == 0.0
    assert buckets.take("alice") > 0
    clock.now += 3600  # an hour idle refills one minute's worth, no more
    assert [buckets.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("alice") > 0


def test_each_subject_has_a_bucket_of_its_own() -> None:
    buckets = TokenBuckets(1, most_subjects=10, clock=Clock())
    assert buckets.take("alice") == 0.0
    assert buckets.take("alice") > 0
    assert buckets.take("bob") == 0.0


def test_more_than_a_bucket_holds_costs_a_full_bucket() -> None:
    clock = Clock()
    buckets = TokenBuckets(2, most_subjects=10, clock=clock)
    assert buckets.take("alice", 30) == 0.0
    assert buckets.take("alice", 30) == pytest.approx(60.0)


def test_many_identities_keep_only_the_most_recent_buckets() -> None:
    clock = Clock()
    buckets = TokenBuckets(1, most_subjects=100, clock=clock)
    buckets.take("victim")
    for i in range(10_000):
        buckets.take(f"identity-{i}" * 1000)  # long subjects are kept as 16-byte digests
        if i % 50 == 0:
            buckets.take("alice")  # seen often: stays tracked, its bucket empty
    assert len(buckets.buckets) == 100
    assert all(len(key) == 16 for key in buckets.buckets)
    assert buckets.take("alice") > 0
    assert buckets.take("victim") == 0.0  # forgotten: a full bucket again


def test_zero_turns_a_limit_off_and_cheap_queries_are_never_counted() -> None:
    limits = RateLimits(
        LimitsSettings(mutations_per_minute=0, expensive_reads_per_minute=1, expensive_cost=100),
        clock=Clock(),
    )
    assert all(limits.mutation("alice", 30) is None for _ in range(1000))
    assert all(limits.query("alice", 100) is None for _ in range(1000))
    assert limits.query("alice", 101) is None
    refused = limits.query("alice", 101)
    assert refused is not None and refused.retry_after == 60


# ---- over HTTP ----

LIMITS = LimitsSettings(mutations_per_minute=3, expensive_reads_per_minute=2, expensive_cost=100)
ME = {"query": "{ me { name } }"}  # cost 1
EXPENSIVE = {"query": "{ models(first: 100) { edges { node { id } } } }"}  # cost 201
MODELS = {"query": "{ models(first: 50) { totalCount } }"}


def register(name: str) -> dict[str, str]:
    """A mutation the tokens (contributors in fraud) may run."""
    query = f'mutation {{ registerModel(input: {{project: "fraud", name: "{name}"}}) {{ model {{ id }} }} }}'
    return {"query": query}


@dataclass
class Served:
    http: httpx.AsyncClient
    clock: Clock
    alice: dict[str, str]
    bob: dict[str, str]

    async def post(self, body: dict[str, Any], as_: dict[str, str], **headers: str) -> Any:
        return await self.http.post("/graphql", json=body, headers={**as_, **headers})


@pytest.fixture
async def served(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Served]:
    """The app (no issuer: API tokens are the principals) with small limits on a test clock."""
    path = tmp_path / "catalog.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}",
        environment="test",
        search=SearchSettings(serve_indexer=False),
        limits=LIMITS,
    )
    clock = Clock()
    app = create_app(settings, rates=RateLimits(LIMITS, clock=clock))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        database = Database(settings.database_url)
        stack.push_async_callback(database.dispose)
        bearers = []
        for name in ("alice", "bob"):
            made = await make(database, name)
            bearers.append({"Authorization": f"Bearer {made.token}"})
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
        # The development user (no header) makes the tokens' project.
        fraud = 'mutation { createProject(input: {name: "fraud"}) { project { id } } }'
        assert "errors" not in (await http.post("/graphql", json={"query": fraud})).json()
        yield Served(http, clock, *bearers)


def rate_limited(response: httpx.Response) -> int:
    """A 429 whose one error is RATE_LIMITED; returns its retryAfter, equal to Retry-After."""
    assert response.status_code == 429, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert "retry in" in error["message"]
    wait = error["extensions"]["retryAfter"]
    assert isinstance(wait, int) and wait > 0
    assert response.headers["retry-after"] == str(wait)
    return wait


async def test_the_mutation_past_the_limit_is_refused_with_a_wait_and_changes_nothing(
    served: Served,
) -> None:
    for i in range(3):
        made = await served.post(register(f"p{i}"), served.alice)
        assert made.status_code == 200 and "errors" not in made.json(), made.text
    refused = await served.post(register("p3"), served.alice)
    assert rate_limited(refused) == 20  # 3 a minute: the next token in 20 s
    assert refused.json()["data"] is None
    models = await served.post(MODELS, served.alice)
    assert models.json()["data"]["models"]["totalCount"] == 3


async def test_graphql_response_clients_get_the_429_too(served: Served) -> None:
    for i in range(3):
        await served.post(register(f"p{i}"), served.alice)
    accept = "application/graphql-response+json"
    refused = await served.post(register("p3"), served.alice, accept=accept)
    rate_limited(refused)
    assert refused.headers["content-type"].startswith(accept)


async def test_aliases_count_as_the_mutations_they_are(served: Served) -> None:
    two = 'mutation { a: registerModel(input: {project: "fraud", name: "a"}) { model { id } }'
    two += ' b: registerModel(input: {project: "fraud", name: "b"}) { model { id } } }'
    assert "errors" not in (await served.post({"query": two}, served.alice)).json()
    rate_limited(await served.post({"query": two.replace('"a"', '"c"')}, served.alice))
    assert "errors" not in (await served.post(register("d"), served.alice)).json()


async def test_another_principal_is_not_limited_by_the_first(served: Served) -> None:
    for i in range(3):
        await served.post(register(f"a{i}"), served.alice)
    rate_limited(await served.post(register("a3"), served.alice))
    for i in range(3):
        made = await served.post(register(f"b{i}"), served.bob)
        assert "errors" not in made.json(), made.text


async def test_the_bucket_refills_after_the_wait(served: Served) -> None:
    for i in range(3):
        await served.post(register(f"p{i}"), served.alice)
    wait = rate_limited(await served.post(register("p3"), served.alice))
    served.clock.now += wait - 1
    rate_limited(await served.post(register("p3"), served.alice))
    served.clock.now += 1
    made = await served.post(register("p3"), served.alice)
    assert made.status_code == 200 and "errors" not in made.json(), made.text


async def test_expensive_reads_are_limited_and_cheap_ones_never(served: Served) -> None:
    for _ in range(2):
        assert (await served.post(EXPENSIVE, served.alice)).status_code == 200
    assert rate_limited(await served.post(EXPENSIVE, served.alice)) == 30
    for _ in range(20):  # far past the expensive limit, and past the mutation limit too
        me = await served.post(ME, served.alice)
        assert me.status_code == 200 and "errors" not in me.json(), me.text
    assert (await served.post(EXPENSIVE, served.bob)).status_code == 200


async def test_a_query_refused_for_its_cost_does_not_count(served: Served) -> None:
    too_costly = {
        "query": "{ models(first: 500) { edges { node { versions(first: 500) { edges { node { id } } } } } } }"
    }
    for _ in range(5):
        refused = await served.post(too_costly, served.alice)
        [error] = refused.json()["errors"]
        assert error["extensions"]["code"] == "INVALID_ARGUMENT"
    assert (await served.post(EXPENSIVE, served.alice)).status_code == 200
