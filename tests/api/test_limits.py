"""Every request bounded: input limits, the cost limit, timeouts, caps on lists that grow."""

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import GraphQLList, get_nullable_type, is_leaf_type, parse
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from mlcatalog.api import limits
from mlcatalog.api.context import Context
from mlcatalog.api.limits import LIMITS, MAX_COST, Limit, RequestLimits
from mlcatalog.api.schema import schema
from mlcatalog.catalog import projects as catalog_projects
from mlcatalog.search import sql
from mlcatalog.search.maintenance import reindex
from mlcatalog.search.request import EntityType, SearchRequest, SearchUnavailable
from mlcatalog.search.sql import SqlSearchBackend
from mlcatalog.store.database import Database, Origin
from tests import factories
from tests.conftest import Api

NESTED = """
query($models: Int!, $versions: Int!) {
  models(first: $models) { edges { node { versions(first: $versions) { edges { node { id } } } } } }
}
"""


async def test_a_string_over_its_limit_is_refused_before_any_database_work(api: Api) -> None:
    statements = api.count_statements()
    code, message = await api.error(
        'query($p: String!) { model(project: $p, name: "m") { id } }', p="x" * 10_001
    )
    assert code == "INVALID_ARGUMENT"
    assert "model(project)" in message and "10000" in message
    assert len(statements) == 0


async def test_a_named_exception_allows_a_longer_string(api: Api) -> None:
    await factories.catalog(api)
    model = await api('{ model(project: "fraud", name: "fraud-detector") { id } }')
    upsert = "mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input) { document { revision } } }"
    await api(upsert, input={"subject": model["model"]["id"], "markdown": "x" * 50_000})
    code, message = await api.error(
        upsert, input={"subject": model["model"]["id"], "markdown": "x" * 100_001}
    )
    assert code == "INVALID_ARGUMENT"
    assert "upsertDocument(input).markdown" in message and "100000" in message


async def test_a_literal_list_over_its_limit_is_refused(api: Api) -> None:
    facets = ", ".join('"stage"' for _ in range(21))
    code, message = await api.error(f"{{ search(input: {{facets: [{facets}]}}) {{ totalCount }} }}")
    assert code == "INVALID_ARGUMENT"
    assert message == "search(input).facets has 21 items; at most 20 are allowed"


async def test_a_list_in_a_variable_over_its_limit_is_refused(api: Api) -> None:
    catalog = await factories.catalog(api)
    statements = api.count_statements()
    tags = [{"key": f"k{i}", "value": "v"} for i in range(101)]
    code, message = await api.error(
        "mutation($input: SetTagsInput!) { setTags(input: $input) { node { id } } }",
        input={"id": catalog["model"]["id"], "tags": tags},
    )
    assert code == "INVALID_ARGUMENT"
    assert message == "setTags(input).tags has 101 items; at most 100 are allowed"
    assert len(statements) == 0


async def test_a_nested_list_item_is_checked_by_its_path(api: Api) -> None:
    values = [f"v{i}" for i in range(101)]
    code, message = await api.error(
        'query($v: [String!]!) { search(input: {filters: [{facet: "stage", values: $v}]}) { totalCount } }',
        v=values,
    )
    assert code == "INVALID_ARGUMENT"
    assert message.startswith("search(input).filters[0].values has 101 items; at most 100")


async def test_a_query_over_the_cost_limit_is_refused_and_one_just_under_runs(api: Api) -> None:
    # models: 1 + 100 * (edge + node + versions (1 + versions * (edge + node))) = 1 + 100 * (3 + 2v)
    assert 1 + 100 * (3 + 2 * 248) <= MAX_COST < 1 + 100 * (3 + 2 * 249)
    await api(NESTED, models=100, versions=248)
    code, message = await api.error(NESTED, models=100, versions=249)
    assert code == "INVALID_ARGUMENT"
    assert "50,101" in message and "50,000" in message


async def test_last_costs_what_first_costs(api: Api) -> None:
    # Every connection declares first and last, both null by default: last was not counted.
    backward = NESTED.replace("first:", "last:")
    assert backward != NESTED
    await api(backward, models=100, versions=248)
    code, message = await api.error(backward, models=100, versions=249)
    assert code == "INVALID_ARGUMENT"
    assert "50,101" in message and "50,000" in message
    code, message = await api.error(backward, models=500, versions=500)
    assert code == "INVALID_ARGUMENT" and "501,501" in message


def test_the_plan_refuses_no_operation_by_assertion() -> None:
    # An operation the document does not hold is none to plan: the executor says so.
    with pytest.raises(ValueError, match="no such operation"):
        limits.Plan(schema._schema, parse("query A { me { name } }"), "B")
    # An introspection field has no definition of ours, so no arguments to check or count.
    plan = limits.Plan(schema._schema, parse('{ __type(name: "Model") { name } }'), None)
    evaluation = limits.Evaluation(plan, get_variable_values(schema._schema, [], {}))  # type: ignore[arg-type]
    assert [evaluation.args(f) for f in plan.fields()] == [{}]


async def test_the_cost_counts_fragments_and_takes_the_costliest_type_of_a_union(
    api: Api,
) -> None:
    query = """
    query($n: Int!) {
      search(input: {first: 200}) { edges { node {
        ... on Model { versions(first: $n) { edges { node { id } } } }
        ... on Run { ...outputs }
      } } }
    }
    fragment outputs on Run { outputs { id } inputs { id } }
    """
    # 1 + 200 * (edge + hit + versions (1 + 2n)): 50,201 with n = 124, 49,801 with n = 123. A Run
    # hit costs 200 (two capped lists): were the types' costs added, n = 123 would cost 89,801.
    code, message = await api.error(query, n=124)
    assert code == "INVALID_ARGUMENT" and "50,201" in message
    result = await api.run(query, n=123)
    assert result.errors and result.errors[0].extensions["code"] == "SEARCH_UNAVAILABLE"


async def test_first_out_of_range_is_refused_before_any_database_work(api: Api) -> None:
    statements = api.count_statements()
    for first in (-1, 501):
        code, message = await api.error(
            "query($n: Int!) { projects(first: $n) { totalCount } }", n=first
        )
        assert code == "INVALID_ARGUMENT"
        assert message == f"projects(first) must be between 0 and 500, not {first}"
    code, _ = await api.error("{ projects(first: 3000000000) { totalCount } }")
    assert code == "INVALID_ARGUMENT"
    code, message = await api.error("{ search(input: {first: 201}) { totalCount } }")
    assert message == "search(input).first must be between 0 and 200, not 201"
    assert len(statements) == 0


async def test_floats_must_be_finite(api: Api) -> None:
    code, message = await api.error(
        '{ search(input: {metrics: [{name: "auc", gte: 1e999}]}) { totalCount } }'
    )
    assert (code, message) == (
        "INVALID_ARGUMENT",
        "search(input).metrics[0].gte must be a finite number, not inf",
    )
    code, _ = await api.error(
        'query($x: Float!) { search(input: {metrics: [{name: "auc", gte: $x}]}) { totalCount } }',
        x=float("nan"),
    )
    assert code == "INVALID_ARGUMENT"


async def test_a_size_past_what_its_column_holds_is_an_invalid_argument(api: Api) -> None:
    # Sizes and counts travel as Float and are stored as 64-bit integers: 1e30 failed there.
    await factories.project(api)
    dataset = await factories.dataset(api)
    model = await factories.model(api)
    largest = 2**63 - 1024  # the largest Float under 2**63
    await factories.dataset_version(api, dataset["id"], label="big", sizeBytes=largest)
    for field in ("rowCount", "sizeBytes"):
        for value in (1e30, 2.0**63, -1.0):
            code, _ = await api.error(
                factories.CREATE_DATASET_VERSION,
                input={"dataset": dataset["id"], "label": "v", "uri": "s3://d", field: value},
            )
            assert code == "INVALID_ARGUMENT", (field, value)
    code, message = await api.error(
        factories.CREATE_VERSION,
        input={"model": model["id"], "artifact": {"uri": "s3://m", "size": 1e30}},
    )
    assert code == "INVALID_ARGUMENT" and "artifact size" in message


@pytest.mark.parametrize(
    "node_id", ["Model:99999999999999999999", "Model:-5", "Model:x", "Model:2147483648"]
)
async def test_a_malformed_or_out_of_range_id_is_an_invalid_argument(
    api: Api, node_id: str
) -> None:
    encoded = base64.b64encode(node_id.encode()).decode()
    code, message = await api.error("query($id: ID!) { node(id: $id) { id } }", id=encoded)
    assert (code, message) == (
        "INVALID_ARGUMENT",
        "not a valid id: ids are the opaque ids the API returns",
    )
    code, _ = await api.error(
        "mutation($id: ID!) { archiveModel(input: {id: $id}) { model { id } } }", id=encoded
    )
    assert code == "INVALID_ARGUMENT"


async def test_a_time_without_an_offset_means_utc(api: Api) -> None:
    await factories.project(api)
    run = await factories.run(api, startedAt="2026-03-01T10:00:00")
    shown = await api("query($id: ID!) { run(id: $id) { startedAt } }", id=run["id"])
    assert shown["run"]["startedAt"] == "2026-03-01T10:00:00+00:00"
    finished = await api(
        'mutation($id: ID!) { finishRun(input: {id: $id, endedAt: "2026-03-01T11:30:00"}) { run { endedAt compute { durationSeconds } } } }',
        id=run["id"],
    )
    assert finished["finishRun"]["run"]["endedAt"] == "2026-03-01T11:30:00+00:00"
    assert finished["finishRun"]["run"]["compute"]["durationSeconds"] == 5400


async def test_an_operation_past_its_timeout_answers_deadline_exceeded(
    database: Database, api: Api
) -> None:
    await factories.catalog(api)
    context = Context(database=database, actor="tester", operation_timeout=1e-6)
    result = await schema.execute(
        "{ models { edges { node { versions { edges { node { id } } } } } } }",
        context_value=context,
    )
    assert result.data is None and result.errors
    assert result.errors[0].extensions == {"code": "DEADLINE_EXCEEDED"}
    assert (await api("{ projects { totalCount } }"))["projects"]["totalCount"] == 1


async def test_a_search_past_its_timeout_stops_the_database_work(
    api: Api, database: Database
) -> None:
    backend = SqlSearchBackend(database, timeout=1e-9)
    documents = {
        (EntityType.MODEL, i): (
            {"name": f"fraud model {i}", "project_id": 1, "stage": ["PRODUCTION"], "tags": []},
            i,
        )
        for i in range(1, 2001)
    }
    await backend.write(documents)  # enough rows that each statement takes many steps
    statements = api.count_statements()
    request = SearchRequest(text="fraud", facets=("stage", "framework", "project"))
    with pytest.raises(SearchUnavailable, match="did not finish in time"):
        await backend.search(request)
    if database.dialect == "postgresql":  # the deadline passed already, or the server cancels
        assert all(
            s.startswith("SET LOCAL statement_timeout = 1") for s in statements.statements[:1]
        )
    # The connection goes back to the pool without its deadline.
    assert (await SqlSearchBackend(database).search(request)).total == 2000
    if database.dialect == "sqlite":  # deterministic: SQLite checks the deadline every 1,000 steps
        api.search = backend
        code, _ = await api.error('{ search(input: {text: "fraud"}) { totalCount } }')
        assert code == "SEARCH_UNAVAILABLE"


async def test_a_search_has_one_deadline_for_all_its_statements(
    api: Api, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that moves a second each time it is read: the search's statements, each quick,
    # add up past its 10 s. PostgreSQL's statement_timeout is per statement, so each one is
    # given what remains of the one deadline. The SQL-only path sends one statement per facet
    # (the in-memory view's path sends three at most, under the same deadline).
    seconds = iter(range(1_000_000))
    monkeypatch.setattr(sql, "time", SimpleNamespace(monotonic=lambda: float(next(seconds))))
    backend = SqlSearchBackend(database, timeout=10)
    await backend.write({(EntityType.MODEL, 1): ({"name": "fraud", "project_id": 1}, 1)})
    statements = api.count_statements()
    facets = ("stage", "framework", "project", "task", "owner", "type", "tag:a", "tag:b")
    with pytest.raises(SearchUnavailable, match="did not finish in time"):
        await backend.search_in_sql(SearchRequest(text="fraud", facets=facets))
    if database.dialect == "postgresql":
        timeouts = [
            int(s.rsplit(" ", 1)[1])
            for s in statements.statements
            if s.startswith("SET LOCAL statement_timeout")
        ]
        assert len(timeouts) > 3 and timeouts == sorted(timeouts, reverse=True)
        assert timeouts[0] <= 10_000 and timeouts[-1] <= 1000


STATS = """query($stats: [MetricStatsInput!]!) { search(input: {metricStats: $stats}) {
  metricStats { count min max avg histogram { start count } } } }"""


async def test_metric_stats_of_extreme_values_are_answered_or_refused(
    api: Api, database: Database
) -> None:
    # Finite inputs whose arithmetic is not: quotients (5e-324), products and sums (1e308).
    await factories.project(api)
    model = await factories.model(api)
    for value in (-1.7e308, 1.7e308, 1.7e308, 1.7e308):
        await factories.version(api, model["id"], metrics=[{"name": "big", "value": value}])
    for value in (0.7, 0.9):
        await factories.version(api, model["id"], metrics=[{"name": "auc", "value": value}])
    await reindex(database, SqlSearchBackend(database), name="embedded")
    api.search = SqlSearchBackend(database)
    for stats in ({"name": "auc", "interval": 5e-324}, {"name": "big", "interval": 1e308}):
        code, message = await api.error(STATS, stats=[stats])
        assert code == "INVALID_ARGUMENT", message
    found = (await api(STATS, stats=[{"name": "big", "buckets": 3}]))["search"]["metricStats"][0]
    assert found["count"] == 4 and found["avg"] == pytest.approx(1.7e308 / 2)
    starts = [bucket["start"] for bucket in found["histogram"]]
    assert starts[0] == -1.7e308 and starts == sorted(starts) and len(starts) == 3
    assert [bucket["count"] for bucket in found["histogram"]] == [1, 0, 3]


async def test_a_list_that_grows_with_the_catalog_is_capped(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await factories.project(api)
    data = await factories.dataset(api)
    version = await factories.dataset_version(api, data["id"])
    model = await factories.model(api)
    for _ in range(3):
        await factories.version(api, model["id"], trainingDatasets=[version["id"]])
    query = "query($id: ID!) { node(id: $id) { ... on DatasetVersion { models { number } } } }"
    assert len((await api(query, id=version["id"]))["node"]["models"]) == 3
    monkeypatch.setitem(LIMITS, "DatasetVersion.models", Limit(items=2))
    assert (await api(query, id=version["id"]))["node"]["models"] == [{"number": 1}, {"number": 2}]


def test_every_list_of_objects_in_the_schema_has_a_cap_or_is_paged() -> None:
    """A list field added without a decision about its size fails here."""
    graphql_schema = schema._schema
    missing = []
    for type_ in graphql_schema.type_map.values():
        if type_.name.startswith("__") or not hasattr(type_, "interfaces"):
            continue
        for name, field in type_.fields.items():
            output: Any = get_nullable_type(field.type)
            if not isinstance(output, GraphQLList) or is_leaf_type(
                get_nullable_type(output.of_type)
            ):
                continue
            paged = name == "edges" and (
                type_.name.endswith("Connection") or type_.name == "SearchResult"
            )
            if not paged and f"{type_.name}.{name}" not in limits.LIMITS:
                missing.append(f"{type_.name}.{name}")
    assert missing == []


def test_every_limit_names_a_field_or_argument_of_the_schema() -> None:
    """A renamed input or type leaves no limit behind that silently guards nothing."""
    graphql_schema = schema._schema
    stale = []
    for coordinate in LIMITS:
        type_name, _, rest = coordinate.partition(".")
        field_name, _, argument = rest.rstrip(")").partition("(")
        type_ = graphql_schema.type_map.get(type_name)
        fields = getattr(type_, "fields", {})
        if field_name not in fields or (argument and argument not in fields[field_name].args):
            stale.append(coordinate)
    assert stale == []


async def test_a_nul_character_in_text_or_json_is_refused_on_every_backend(api: Api) -> None:
    """PostgreSQL stores no U+0000: without the check it failed there as INTERNAL (fuzzer)."""
    code, message = await api.error(
        'mutation($d: String) { createProject(input: {name: "p", description: $d}) { project { id } } }',
        d="a\x00b",
    )
    assert (code, "NUL" in message) == ("INVALID_ARGUMENT", True)
    code, _ = await api.error('{ models(filter: {nameContains: "\\u0000"}) { totalCount } }')
    assert code == "INVALID_ARGUMENT"
    await factories.project(api)
    model = await factories.model(api)
    code, _ = await api.error(
        factories.CREATE_VERSION,
        input={"model": model["id"], "hyperparameters": {"k\x00": "v"}},
    )
    assert code == "INVALID_ARGUMENT"


CREATE = 'mutation { createProject(input: {name: "late"}) { project { name } } }'


async def project_count(database: Database) -> int:
    context = Context(database=database, actor="tester")
    result = await schema.execute("{ projects { totalCount } }", context_value=context)
    assert result.data is not None, result.errors
    return int(result.data["projects"]["totalCount"])


@pytest.mark.parametrize("delay", ["before-commit", "after-commit"])
async def test_a_write_whose_rule_ran_commits_and_answers_past_the_deadline(
    database: Database, monkeypatch: pytest.MonkeyPatch, delay: str
) -> None:
    """Answering DEADLINE_EXCEEDED for an applied write would invite the client to retry it."""
    timeout = 0.3  # time enough for the rule, on a busy machine too
    unit_of_work = Database.unit_of_work

    @asynccontextmanager
    async def slow(self: Database, origin: Origin, **options: Any) -> AsyncIterator[Any]:
        async with unit_of_work(self, origin, **options) as uow:
            yield uow
            if delay == "before-commit":
                await asyncio.sleep(timeout * 2)
        if delay == "after-commit":
            await asyncio.sleep(timeout * 2)

    monkeypatch.setattr(Database, "unit_of_work", slow)
    context = Context(database=database, actor="tester", operation_timeout=timeout)
    result = await schema.execute(CREATE, context_value=context)
    assert result.errors is None
    assert result.data == {"createProject": {"project": {"name": "late"}}}
    monkeypatch.undo()
    assert await project_count(database) == 1


async def test_a_deadline_inside_the_rule_writes_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeout = 0.3  # time enough for the rule, on a busy machine too
    create_project = catalog_projects.create_project

    async def slow(uow: Any, **fields: Any) -> Any:
        row = await create_project(uow, **fields)
        await asyncio.sleep(timeout * 2)
        return row

    monkeypatch.setattr(catalog_projects, "create_project", slow)
    context = Context(database=database, actor="tester", operation_timeout=timeout)
    result = await schema.execute(CREATE, context_value=context)
    assert result.data is None and result.errors
    assert [e.extensions for e in result.errors] == [{"code": "DEADLINE_EXCEEDED"}]
    assert await project_count(database) == 0


ALIASES = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(31)) + " }"


def bare() -> Context:
    """A context for fields that read no database (me)."""
    return Context(database=Database("sqlite+aiosqlite://"), actor="tester")


def test_each_request_gets_extension_instances_of_its_own() -> None:
    first, second = schema.get_extensions(), schema.get_extensions()
    assert not {id(e) for e in first} & {id(e) for e in second}


async def test_the_document_limits_hold_for_requests_that_interleave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Strawberry gives each extension instance the execution context of its request: an
    instance shared between requests checked one request's document with another's rules."""

    class Interleave(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            await asyncio.sleep(0)  # another request runs its hooks meanwhile
            yield

    monkeypatch.setattr(schema, "extensions", (Interleave, *schema.extensions))
    too_many, fine = await asyncio.gather(
        schema.execute(ALIASES, context_value=bare()),
        schema.execute("{ me { name } }", context_value=bare()),
    )
    assert too_many.errors, too_many.data
    assert "31 aliases" in too_many.errors[0].message
    assert fine.data == {"me": {"name": "tester"}}


async def test_a_big_document_is_answered_and_not_cached() -> None:
    padding = "# " + "x" * (limits.MAX_CACHED_QUERY) + "\n"
    big = padding + "{ me { name } }"
    parses, validations = _get_parse_cache(1000), _get_validate_cache(1000)
    parsed, validated = parses.cache_info(), validations.cache_info()
    for _ in range(2):
        result = await schema.execute(big, context_value=bare())
        assert result.errors is None
        assert result.data == {"me": {"name": "tester"}}
    assert (parses.cache_info().hits, parses.cache_info().misses) == (parsed.hits, parsed.misses)
    hits, misses = validations.cache_info().hits, validations.cache_info().misses
    assert (hits, misses) == (validated.hits, validated.misses)
    assert all(query != big for query, _ in RequestLimits.plans.plans)
    # Parsed and validated all the same, with the limits: uncached is not unchecked.
    result = await schema.execute(padding + ALIASES)
    assert result.errors and "31 aliases" in result.errors[0].message
    result = await schema.execute(padding + "{ nope }")
    assert result.errors and result.errors[0].extensions == {"code": "INVALID_ARGUMENT"}


async def test_a_document_just_under_the_size_is_cached() -> None:
    query = "{ me { name } }"
    small = "# " + "y" * (limits.MAX_CACHED_QUERY - len(query) - 3) + "\n" + query
    assert len(small) == limits.MAX_CACHED_QUERY
    parses = _get_parse_cache(1000)
    for _ in range(2):
        await schema.execute(small, context_value=bare())
    hits = parses.cache_info().hits
    await schema.execute(small, context_value=bare())
    assert parses.cache_info().hits == hits + 1
    assert any(query == small for query, _ in RequestLimits.plans.plans)


async def test_a_lone_surrogate_in_text_is_refused(api: Api) -> None:
    """No database stores one (it cannot be written as UTF-8): it failed in the driver."""
    code, message = await api.error(
        'mutation($d: String) { createProject(input: {name: "p", description: $d}) { project { id } } }',
        d="a\ud800b",
    )
    assert (code, "surrogate" in message) == ("INVALID_ARGUMENT", True)


async def test_a_document_of_several_operations_must_name_the_one_to_run(api: Api) -> None:
    document = "query A { me { name } } query B { projects { totalCount } }"
    code, message = await api.error(document)
    assert code == "INVALID_ARGUMENT"
    assert "operationName" in message
    result = await schema.execute(
        document, operation_name="B", context_value=Context(database=api.database, actor="t")
    )
    assert result.errors is None
    assert result.data == {"projects": {"totalCount": 0}}
