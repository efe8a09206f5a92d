"""The response cache of GraphQL reads over HTTP (api/cache.py): a hit answers what a miss does,
a write through another process is seen by the next read, callers with other rights never share
an answer, ETags revalidate, and a hit costs one statement."""

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType
from starlette.applications import Starlette

from mlcatalog.api import cache
from mlcatalog.api.cache import Entry, ResponseCache, keepable
from mlcatalog.api.http import CatalogGraphQL
from mlcatalog.api.schema import schema
from mlcatalog.app import create_app
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.search.backend import open_backend
from mlcatalog.search.indexer import Indexer
from mlcatalog.settings import AuthSettings, CacheSettings, LimitsSettings, SearchSettings, Settings
from mlcatalog.store.database import Database
from mlcatalog.store.rows import Base
from tests.conftest import Api
from tests.policies import policy_in

# Who is who: the bearer token is the subject (the test's authenticator).
PEOPLE = """
g, user:admin, admin, *
g, user:viewer, viewer, *
g, user:alpha-reader, viewer, alpha
g, user:beta-reader, viewer, beta
"""

MODEL = """query($name: String!) {
  model(project: "alpha", name: $name) { name description tags { key value } }
}"""
MODELS = "{ models(first: 20) { edges { node { name } } } }"
AUDIT = "{ auditLog(first: 5) { totalCount } }"


class Bearers:
    """``Authorization: Bearer <subject>`` is that subject (an OIDC user without groups)."""

    async def principal(self, authorization: str | None, session: str | None = None) -> Principal:
        subject = (authorization or "Bearer admin").removeprefix("Bearer ")
        return Principal(subject=subject, method=Method.BEARER)

    def announce(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass
class Served:
    http: httpx.AsyncClient
    app: Starlette
    url: str
    m1: str = ""  # model m1's id

    async def post(self, query: str, as_: str = "admin", **variables: Any) -> httpx.Response:
        return await self.post_with({}, query, as_, **variables)

    async def post_with(
        self, headers: dict[str, str], query: str, as_: str = "admin", **variables: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {as_}", **headers}
        body = {"query": query, "variables": variables}
        return await self.http.post("/graphql", json=body, headers=headers)

    async def data(self, query: str, as_: str = "admin", **variables: Any) -> Any:
        response = await self.post(query, as_, **variables)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]

    @property
    def cache(self) -> ResponseCache:
        for route in self.app.routes:
            view = getattr(route, "endpoint", None)
            if isinstance(view, CatalogGraphQL) and view.cache is not None:
                return view.cache
        raise AssertionError("no GraphQL view with a cache")


async def serve(
    stack: AsyncExitStack,
    url: str,
    policy_dir: Path,
    limits: LimitsSettings | None = None,
    **cache_settings: Any,
) -> Served:
    settings = Settings(
        database_url=url,
        environment="test",
        search=SearchSettings(serve_indexer=False),
        auth=AuthSettings(policy_dir=policy_dir),
        limits=limits or LimitsSettings(mutations_per_minute=0, expensive_reads_per_minute=0),
        cache=CacheSettings(**cache_settings),
    )
    app = create_app(settings, authenticator=Bearers())
    await stack.enter_async_context(app.router.lifespan_context(app))
    http = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    )
    return Served(http, app, url)


@pytest.fixture
async def served(database: Database, tmp_path: Path) -> AsyncIterator[Served]:
    """The app on each backend, with alpha (model m1) and beta (model m2)."""
    policy = policy_in(tmp_path / "policy", PEOPLE).policy.parent
    async with AsyncExitStack() as stack:
        served = await serve(stack, database.url, policy)
        for project, model in (("alpha", "m1"), ("beta", "m2")):
            await served.data(
                f'mutation {{ createProject(input: {{name: "{project}"}}) {{ project {{ id }} }} }}'
            )
            made = await served.data(
                f'mutation {{ registerModel(input: {{project: "{project}", name: "{model}"}}) {{ model {{ id }} }} }}'
            )
            served.m1 = served.m1 or made["registerModel"]["model"]["id"]
        yield served


UPDATE = """mutation($id: ID!, $description: String!) {
  updateModel(input: {id: $id, description: $description}) { model { id } }
}"""

# Another process: its own interpreter, engine and (empty) cache, the same database.
OTHER_PROCESS = """
import asyncio, sys
from mlcatalog.api.context import Context
from mlcatalog.api.schema import schema
from mlcatalog.store.database import Database

async def main(url, query, id, description):
    database = Database(url)
    context = Context(database=database, actor="elsewhere")
    variables = {"id": id, "description": description}
    result = await schema.execute(query, variables, context_value=context)
    assert not result.errors, result.errors
    await database.dispose()

asyncio.run(main(*sys.argv[1:]))
"""


def write_elsewhere(served: "Served", description: str) -> None:
    command = [sys.executable, "-c", OTHER_PROCESS, served.url, UPDATE, served.m1, description]
    subprocess.run(command, check=True)


async def test_a_hit_answers_what_the_miss_did_and_a_write_elsewhere_is_seen(
    served: Served,
) -> None:
    miss = await served.post(MODEL, name="m1")
    kept = len(served.cache.entries)
    hit = await served.post(MODEL, name="m1")
    assert kept >= 1 and len(served.cache.entries) == kept  # answered from the entry
    assert hit.status_code == miss.status_code == 200
    assert hit.content == miss.content
    assert hit.headers["etag"] == miss.headers["etag"]
    assert hit.headers["cache-control"] == "private, no-cache"
    assert hit.headers["content-type"] == miss.headers["content-type"]

    write_elsewhere(served, "changed by another process")
    after = await served.data(MODEL, name="m1")
    assert after["model"]["description"] == "changed by another process"
    # Each write elsewhere is seen by the next read, however many happen.
    for n in range(3):
        write_elsewhere(served, f"again {n}")
        assert (await served.data(MODEL, name="m1"))["model"]["description"] == f"again {n}"


async def test_variables_are_part_of_the_key(served: Served) -> None:
    assert (await served.data(MODEL, name="m1"))["model"]["name"] == "m1"
    assert (await served.data(MODEL, name="nope"))["model"] is None


async def test_a_viewer_never_gets_the_answer_kept_for_an_admin(served: Served) -> None:
    admin = await served.post(AUDIT, as_="admin")
    assert admin.json()["data"]["auditLog"]["totalCount"] > 0
    viewer = (await served.post(AUDIT, as_="viewer")).json()
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # The viewer's refusal is kept for the viewer, and the admin still gets the admin's answer.
    assert (await served.post(AUDIT, as_="viewer")).json() == viewer
    assert (await served.post(AUDIT, as_="admin")).content == admin.content


async def test_callers_of_different_projects_never_share_an_answer(served: Served) -> None:
    def names(data: Any) -> set[str]:
        return {edge["node"]["name"] for edge in data["models"]["edges"]}

    assert names(await served.data(MODELS, as_="alpha-reader")) == {"m1"}
    assert names(await served.data(MODELS, as_="beta-reader")) == {"m2"}
    assert names(await served.data(MODELS, as_="alpha-reader")) == {"m1"}
    assert names(await served.data(MODELS, as_="viewer")) == {"m1", "m2"}


async def test_if_none_match_gets_304_until_a_write(served: Served) -> None:
    first = await served.post(MODEL, name="m1")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong
    same = await served.post_with({"If-None-Match": etag}, MODEL, name="m1")
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == etag
    # The tag names the bytes, not who asked nor the journal's head: another caller whose
    # answer is the same bytes revalidates with it, and a write elsewhere does not move it
    # (a tag that moved with the head would show writes in projects the caller cannot see).
    other = await served.post_with({"If-None-Match": etag}, MODEL, "viewer", name="m1")
    assert other.status_code == 304
    await served.data(
        'mutation { registerModel(input: {project: "beta", name: "m3"}) { model { id } } }'
    )
    elsewhere = await served.post_with({"If-None-Match": etag}, MODEL, name="m1")
    assert elsewhere.status_code == 304 and elsewhere.headers["etag"] == etag

    await served.data(UPDATE, id=served.m1, description="moved on")
    changed = await served.post_with({"If-None-Match": etag}, MODEL, name="m1")
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["data"]["model"]["description"] == "moved on"


async def test_get_queries_are_cached_and_revalidated(served: Served) -> None:
    params = {"query": MODELS}
    headers = {"Authorization": "Bearer viewer"}
    first = await served.http.get("/graphql", params=params, headers=headers)
    assert first.status_code == 200 and "errors" not in first.json()
    again = await served.http.get(
        "/graphql", params=params, headers={**headers, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304


async def test_a_hit_runs_one_statement(served: Served) -> None:
    await served.post(MODEL, name="m1")
    counter = Api(served.app.state.database).count_statements()
    hit = await served.post(MODEL, name="m1")
    assert hit.status_code == 200
    assert len(counter) == 1, counter.statements
    assert "journal_head" in counter.statements[0]


async def test_mutations_me_and_errors_are_not_kept(served: Served) -> None:
    before = len(served.cache.entries)
    response = await served.post(UPDATE, id=served.m1, description="x")
    assert "etag" not in response.headers
    assert "etag" not in (await served.post("{ me { name } }")).headers
    # A document that does not validate is refused, not kept.
    assert "etag" not in (await served.post("{ model { nope } }")).headers
    assert len(served.cache.entries) == before


async def test_search_is_answered_from_the_mirror_as_it_is_now(served: Served) -> None:
    """Search reads the mirror, which moves after the journal without moving its head: a search
    asked before the indexer ran and again after it finds the model the second time."""
    query = '{ search(input: {text: "m1"}) { totalCount } }'
    database = served.app.state.database
    backend, checkpoint = open_backend(SearchSettings(), database)
    before = await served.data(query)
    assert before["search"]["totalCount"] == 0  # not indexed yet
    await Indexer(database, backend, name=checkpoint).catch_up()
    after = await served.data(query)
    assert after["search"]["totalCount"] >= 1
    assert "etag" not in (await served.post(query)).headers


async def test_off_by_setting(database: Database, tmp_path: Path) -> None:
    policy = policy_in(tmp_path / "policy", PEOPLE).policy.parent
    async with AsyncExitStack() as stack:
        served = await serve(stack, database.url, policy, enabled=False)
        response = await served.post(MODELS)
        assert response.status_code == 200 and "etag" not in response.headers


async def test_a_hit_is_charged_its_callers_rate_limit(database: Database, tmp_path: Path) -> None:
    policy = policy_in(tmp_path / "policy", PEOPLE).policy.parent
    # Every query is expensive, and one a minute is allowed.
    limits = LimitsSettings(expensive_cost=0, expensive_reads_per_minute=1)
    async with AsyncExitStack() as stack:
        served = await serve(stack, database.url, policy, limits)
        first = await served.post(MODELS)
        assert first.status_code == 200 and "etag" in first.headers
        assert len(served.cache.entries) == 1
        again = await served.post(MODELS)  # would be a hit: refused like a miss would be
        assert again.status_code == 429, again.text
        [error] = again.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert again.headers["retry-after"] == str(error["extensions"]["retryAfter"])
        # Another caller has a bucket of its own, and no entry to hit.
        assert (await served.post(MODELS, as_="viewer")).status_code == 200


def test_the_lru_keeps_within_entries_and_bytes() -> None:
    lru = ResponseCache(CacheSettings(max_entries=3, max_bytes=4096, max_entry_bytes=2048), "b")

    def entry(size: int) -> Entry:
        return Entry(b"x" * size, 1, None)

    for n in range(5):
        assert lru.put(bytes([n]), entry(10))
    assert list(lru.entries) == [bytes([2]), bytes([3]), bytes([4])]
    assert lru.get(bytes([2])) is not None  # used: now the newest
    assert lru.put(b"big", entry(2000))
    assert list(lru.entries) == [bytes([4]), bytes([2]), b"big"]
    assert lru.put(b"bigger", entry(2040))  # 4,060 bytes: the oldest goes by count
    assert list(lru.entries) == [bytes([2]), b"big", b"bigger"]
    assert lru.put(b"more", entry(100))  # 4,150 bytes: by bytes, two go
    assert list(lru.entries) == [b"bigger", b"more"]
    assert not lru.put(b"too big", entry(2049))
    assert b"too big" not in lru.entries
    assert lru.bytes == sum(len(e.body) for e in lru.entries.values())


def test_what_is_kept() -> None:
    assert keepable({"Query.model", "Model.name"}, ())
    assert keepable({"Query.model"}, ("FORBIDDEN", "NOT_FOUND"))
    assert not keepable({"Query.model"}, ("DEADLINE_EXCEEDED",))
    assert not keepable({"Query.node", "Webhook.deliveredThrough"}, ())
    assert not keepable({"Query.me", "Me.name"}, ())


# Tables whose every change is journaled in the same transaction (so moves the journal's head).
JOURNALED = {
    "projects", "models", "model_tags", "model_versions", "model_version_tags", "aliases",
    "metrics", "datasets", "dataset_tags", "dataset_versions", "experiments", "runs",
    "run_metrics", "lineage_edges", "deployments", "documents", "document_revisions", "comments",
    "project_settings", "quality_gates", "stage_transition_requests", "journal", "journal_head",
}  # fmt: skip


def test_every_table_is_decided() -> None:
    """A new table is journaled (add it above) or names the fields that read it, never kept."""
    tables = set(Base.metadata.tables)
    undecided = tables - JOURNALED - set(cache.UNJOURNALED_TABLES)
    assert not undecided, f"decide in api/cache.py UNJOURNALED_TABLES or JOURNALED: {undecided}"
    assert not JOURNALED & set(cache.UNJOURNALED_TABLES)
    for coordinates in cache.UNJOURNALED_TABLES.values():
        assert set(coordinates) <= set(cache.NOT_CACHED)


def test_every_field_not_cached_exists() -> None:
    types = schema._schema.type_map
    for coordinate in cache.NOT_CACHED:
        type_name, _, field = coordinate.partition(".")
        found = types.get(type_name)
        assert isinstance(found, GraphQLObjectType), coordinate
        assert field == "*" or field in found.fields, coordinate
