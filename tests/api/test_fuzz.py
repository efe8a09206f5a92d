"""Fuzzing the served API with documents generated from schema.graphql (hypothesis-graphql).

Valid and invalid queries run against the demo catalog, valid and invalid mutations against a
copy of it of their own; whatever a client sends, the answer is never a 5xx, every error has a
code of the vocabulary and is not INTERNAL (an INTERNAL is a bug: an exception nobody mapped),
no message shows a traceback or SQL, and the server still answers afterwards. The examples are
derandomized so CI sees the same documents every run; MLCATALOG_FUZZ_SEED explores others and
MLCATALOG_FUZZ_SCALE multiplies the number of examples.
"""

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from mlcatalog import demo
from mlcatalog.api.ids import encode
from mlcatalog.app import create_app
from mlcatalog.catalog.errors import ErrorCode
from mlcatalog.demo import load_demo
from mlcatalog.search.maintenance import reindex
from mlcatalog.search.sql import SqlSearchBackend
from mlcatalog.settings import Settings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, Origin

SCHEMA = graphql.build_schema((Path(__file__).resolve().parents[2] / "schema.graphql").read_text())
QUERY, MUTATION = SCHEMA.query_type, SCHEMA.mutation_type
assert QUERY is not None and MUTATION is not None
CODES = {str(code) for code in ErrorCode}
# What must never reach a client: a trace, a file of the server, SQL or the ORM's words.
LEAKS = ("Traceback", 'File "', "sqlalchemy", "sqlite3", "asyncpg", "SELECT ", "INSERT ", "UPDATE ")
SCALE = float(os.environ.get("MLCATALOG_FUZZ_SCALE", "1"))
SEED = os.environ.get("MLCATALOG_FUZZ_SEED")


def json_value() -> st.SearchStrategy[graphql.ValueNode]:
    leaves = st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers(-(2**40), 2**40).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.booleans().map(lambda b: graphql.BooleanValueNode(value=b)),
    )
    pairs = st.lists(st.tuples(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), leaves), max_size=4)
    objects = pairs.map(
        lambda items: nodes.Object(
            [
                graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                for k, v in dict(items).items()
            ]
        )
    )
    return st.one_of(leaves, objects)


# Arguments that find something in the demo catalog, beside arbitrary ones that find nothing.
NODE_TYPES = [
    "Comment",
    "Dataset",
    "DatasetVersion",
    "Document",
    "Experiment",
    "Model",
    "ModelVersion",
    "Project",
    "Run",
]
WORDS = sorted(
    {
        *demo.PROJECTS,
        *demo.TASKS,
        *demo.TASKS.values(),
        *(name for names in demo.DATASETS.values() for name in names),
        *(framework for framework, _, _ in demo.FRAMEWORKS),
        *("accuracy", "f1", "auc", "latency_ms", "train", "holdout", "pii", "team", "true"),
        *("framework", "stage", "task", "owner", "project", "type", "tag:team", "tag:pii"),
        *("local-dev", "risk", "search", "vision", "planning", "1.0.0", "champion"),
    }
)
# Ids of real rows mostly, then numbers no column holds and node parts that are no number.
ROW_NUMBERS = st.one_of(
    st.integers(0, 80),
    st.integers(0, 80),
    # The bounds of PostgreSQL's INTEGER and SQLite's, and beyond.
    st.sampled_from([-1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**21]),
    st.integers(-(2**70), 2**70),
    st.text(max_size=4),
)
IDS = st.one_of(
    st.builds(lambda t, n: encode(t, n), st.sampled_from(NODE_TYPES), ROW_NUMBERS),
    st.text(max_size=12),
).map(nodes.String)
STRINGS = st.one_of(st.sampled_from(WORDS), st.text(max_size=30)).map(nodes.String)

SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    "ID": IDS,
    "String": STRINGS,
    "DateTime": st.one_of(
        st.datetimes(
            min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: nodes.String(d.isoformat())),
        st.text(max_size=30).map(nodes.String),
    ),
    "JSON": json_value(),
}


def documents(kind: Any, root: graphql.GraphQLObjectType, mode: Mode) -> st.SearchStrategy[str]:
    """Documents under one root field each, every root field as likely as any other: they cover
    each operation more evenly, and cost a quarter of the time to generate of whole-schema ones."""
    # A field without arguments has nothing to get wrong.
    names = [n for n, f in root.fields.items() if mode is Mode.POSITIVE or f.args]
    return st.one_of(
        *(kind(SCHEMA, fields=[name], custom_scalars=SCALARS, mode=mode) for name in names)
    )


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


def fuzz_settings(n: int) -> Any:
    chosen = settings(
        max_examples=examples(n),
        deadline=None,
        derandomize=SEED is None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
    return lambda f: chosen(seed(int(SEED))(f)) if SEED is not None else chosen(f)


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo catalog, migrated and indexed for the embedded search, built once."""
    path = tmp_path_factory.mktemp("fuzz") / "demo.db"

    async def build() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(database)
        await load_demo(database, origin=Origin(actor="demo"), seed=7)
        await reindex(database, SqlSearchBackend(database), name="embedded")
        await database.dispose()

    asyncio.run(build())
    return path


class Served:
    """The application with its lifespan, called over ASGI from synchronous Hypothesis tests."""

    def __init__(self, path: Path) -> None:
        self.runner = asyncio.Runner()
        self.stack = AsyncExitStack()
        # Rate limits off: thousands of operations by one caller would otherwise mostly be
        # refused before they run (tests/api/test_rates.py covers the limits).
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{path}",
            search={"serve_indexer": False},
            limits={"mutations_per_minute": 0, "expensive_reads_per_minute": 0},
        )
        self.app = create_app(settings)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://fuzz"
        )
        self.count = 0

    def __enter__(self) -> "Served":
        self.runner.__enter__()
        self.runner.run(self.stack.enter_async_context(self.app.router.lifespan_context(self.app)))
        self.runner.run(self.stack.enter_async_context(self.client))
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.run(self.stack.aclose())
        self.runner.__exit__(None, None, None)

    def post(self, document: str) -> httpx.Response:
        self.count += 1
        return self.runner.run(self.client.post("/graphql", json={"query": document}))


SEEN: dict[str, int] = {}


def check(response: httpx.Response, document: str) -> None:
    assert response.status_code < 500, (response.status_code, document, response.text)
    body = response.json()
    for error in body.get("errors") or ():
        code = (error.get("extensions") or {}).get("code")
        SEEN[str(code)] = SEEN.get(str(code), 0) + 1
        assert code in CODES, (error, document)
        assert code != "INTERNAL", (error, document)
        for leak in LEAKS:
            assert leak not in error["message"], (leak, error, document)


def still_answers(served: Served) -> None:
    response = served.post("{ me { name } projects { totalCount } }")
    assert response.status_code == 200
    assert response.json()["data"]["me"]["name"] == "local-dev"


@pytest.fixture(scope="module")
def served_queries(demo_template: Path) -> Iterator[Served]:
    with Served(demo_template) as served:
        yield served


@pytest.fixture
def served_mutations(demo_template: Path, tmp_path: Path) -> Iterator[Served]:
    path = tmp_path / "mutated.db"
    shutil.copy(demo_template, path)
    with Served(path) as served:
        yield served


def run(served: Served, strategy: st.SearchStrategy[str], n: int) -> None:
    started = time.monotonic()

    @fuzz_settings(n)
    @given(document=strategy)
    def fuzz(document: str) -> None:
        check(served.post(document), document)

    fuzz()
    still_answers(served)
    print(f"{served.count} documents in {time.monotonic() - started:.1f} s", SEEN)


def test_valid_queries(served_queries: Served) -> None:
    run(served_queries, documents(queries, QUERY, Mode.POSITIVE), 1500)


def test_invalid_queries(served_queries: Served) -> None:
    run(served_queries, documents(queries, QUERY, Mode.NEGATIVE), 1000)


def test_valid_mutations(served_mutations: Served) -> None:
    run(served_mutations, documents(mutations, MUTATION, Mode.POSITIVE), 1000)


def test_invalid_mutations(served_mutations: Served) -> None:
    run(served_mutations, documents(mutations, MUTATION, Mode.NEGATIVE), 500)


# What the fuzzer found, kept as plain cases.


@pytest.mark.parametrize("number", ["9223372036854775808", "2147483648", "-1", "0", "²"])
def test_an_id_whose_number_no_row_can_have_is_refused(served_queries: Served, number: str) -> None:
    run_id = encode("Run", number)  # type: ignore[arg-type]
    body = served_queries.post(f'{{ run(id: "{run_id}") {{ id }} }}').json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    model_id = encode("Model", number)  # type: ignore[arg-type]
    body = served_queries.post(f'{{ node(id: "{model_id}") {{ id }} }}').json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
