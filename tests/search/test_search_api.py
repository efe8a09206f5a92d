"""The search query end to end: a mutation, the indexer, GraphQL search with hydrated hits."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from mlcatalog.auth.access import Policy, access_of
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.search.opensearch import OpenSearchBackend
from mlcatalog.store.database import Database
from tests import factories
from tests.api.test_authorization import PEOPLE
from tests.conftest import Api
from tests.policies import policy_in
from tests.search.builders import catalog, index

SEARCH = """
query($input: SearchInput!) {
  search(input: $input) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor score highlights { field fragments }
      node {
        __typename
        ... on ModelVersion { number model { name } }
        ... on Model { name }
        ... on Dataset { name }
        ... on Experiment { name }
        ... on Run { name }
      }
    }
    facets { facet buckets { value count selected } }
    metricStats { name dataset count min max avg }
  }
}
"""


async def test_search_returns_hydrated_versions_with_facets(
    api: Api, database: Database, backend: Any
) -> None:
    await catalog(api)
    await index(database, backend)
    api.search = backend
    data = await api(
        SEARCH,
        input={
            "text": "payments",
            "filters": [{"facet": "stage", "values": ["PRODUCTION"]}],
            "facets": ["stage", "framework"],
            "metrics": [{"name": "auc", "dataset": "holdout", "gte": 0.9}],
            "sort": [{"by": "METRIC", "metric": "auc", "dataset": "holdout", "direction": "DESC"}],
            "metricStats": [{"name": "auc", "dataset": "holdout"}],
        },
    )
    result = data["search"]
    assert result["totalCount"] == 2
    assert [e["node"]["model"]["name"] for e in result["edges"]] == [
        "fraud-detector",
        "spam-filter",
    ]
    assert all(e["node"]["__typename"] == "ModelVersion" for e in result["edges"])
    assert any(h["field"] == "description" for h in result["edges"][0]["highlights"])
    stages = {
        b["value"]: b["count"]
        for f in result["facets"]
        if f["facet"] == "stage"
        for b in f["buckets"]
    }
    assert stages == {"PRODUCTION": 2}
    assert result["metricStats"][0]["count"] == 2


async def test_pages_follow_their_cursor_and_refuse_another_query(
    api: Api, database: Database, backend: Any
) -> None:
    await catalog(api)
    await index(database, backend)
    api.search = backend
    query = {"entityTypes": ["MODEL_VERSION"], "sort": [{"by": "NAME", "direction": "ASC"}]}
    query["first"] = 2
    first = (await api(SEARCH, input=query))["search"]
    assert first["pageInfo"]["hasNextPage"]
    second = (await api(SEARCH, input={**query, "after": first["pageInfo"]["endCursor"]}))["search"]
    assert not second["pageInfo"]["hasNextPage"]
    exact = (await api(SEARCH, input={**query, "first": 3}))["search"]
    assert len(exact["edges"]) == 3 and not exact["pageInfo"]["hasNextPage"]
    names = [e["node"]["model"]["name"] for e in first["edges"] + second["edges"]]
    assert names == ["churn-model", "fraud-detector", "spam-filter"]
    code, _ = await api.error(
        SEARCH, input={"text": "other", "after": first["pageInfo"]["endCursor"]}
    )
    assert code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "bad",
    [
        {"facets": ["colour"]},
        {"first": -1},
        {"first": 100000},
        {"metricStats": [{"name": "auc", "buckets": 0}]},
        {"metricStats": [{"name": "auc", "interval": -1}]},
        {"after": "garbage"},
        {"text": "x" * 10_000},
    ],
)
async def test_bad_search_input_is_invalid(api: Api, backend: Any, bad: dict[str, object]) -> None:
    api.search = backend
    code, _ = await api.error(SEARCH, input=bad)
    assert code == "INVALID_ARGUMENT"


async def test_without_a_backend_search_is_unavailable(api: Api) -> None:
    code, message = await api.error(SEARCH, input={"text": "fraud"})
    assert code == "SEARCH_UNAVAILABLE"
    assert "no search backend" in message


async def test_an_unreachable_engine_answers_search_unavailable_quickly(api: Api) -> None:
    dead = OpenSearchBackend("http://127.0.0.1:9", timeout=1.0)
    api.search = dead
    try:
        code, _ = await api.error(SEARCH, input={"text": "fraud"})
    finally:
        await dead.close()
    assert code == "SEARCH_UNAVAILABLE"


async def test_a_hit_gone_from_the_store_is_not_shown(
    api: Api, database: Database, backend: Any
) -> None:
    await catalog(api)
    await index(database, backend)
    model = await api('{ model(project: "fraud", name: "spam-filter") { id } }')
    await api(
        "mutation($id: ID!) { deleteModel(input: {id: $id}) { deletedId } }",
        id=model["model"]["id"],
    )
    api.search = backend  # the index has not caught up yet: the hits are there, the rows are not
    data = await api(SEARCH, input={"text": "spam"})
    assert data["search"]["totalCount"] == 4
    assert sorted(e["node"]["__typename"] for e in data["search"]["edges"]) == ["Experiment", "Run"]


async def test_mixed_hits_resolve_to_their_types_in_one_statement_per_type(
    api: Api, database: Database, backend: Any
) -> None:
    await catalog(api)
    await index(database, backend)
    api.search = backend
    counter = api.count_statements()
    data = await api(SEARCH, input={"text": "spam"})
    nodes = {e["node"]["__typename"]: e["node"] for e in data["search"]["edges"]}
    assert sorted(nodes) == ["Experiment", "Model", "ModelVersion", "Run"]
    assert nodes["Model"]["name"] == "spam-filter"
    assert nodes["ModelVersion"]["model"]["name"] == "spam-filter"
    assert nodes["Experiment"]["name"] == "spam-tuning"
    # One statement per hit type (the version's model is the model hit, loaded once); the
    # embedded backend's own queries come on top.
    hydrating = [s for s in counter.statements if "search_" not in s]
    assert len(hydrating) == 4, hydrating


@pytest.mark.parametrize("forged", [2**70, "a\x00b", "\ud800", float("inf"), True, "x" * 1001])
async def test_a_forged_search_cursor_is_refused_before_the_engine(
    api: Api, database: Database, backend: Any, forged: Any
) -> None:
    await catalog(api)
    await index(database, backend)
    api.search = backend
    query = {"entityTypes": ["MODEL_VERSION"], "sort": [{"by": "NAME", "direction": "ASC"}]}
    page = (await api(SEARCH, input={**query, "first": 1}))["search"]
    owner, key = json.loads(base64.urlsafe_b64decode(page["pageInfo"]["endCursor"]))
    key[0] = forged
    cursor = base64.urlsafe_b64encode(json.dumps([owner, key]).encode()).decode()
    code, _ = await api.error(SEARCH, input={**query, "first": 1, "after": cursor})
    assert code == "INVALID_ARGUMENT"


async def test_search_shows_no_hit_count_facet_or_stat_of_a_hidden_project(
    api: Api, database: Database, backend: Any, tmp_path: Path
) -> None:
    await catalog(api)  # project fraud
    await factories.project(api, "secret")
    hidden = await factories.model(api, "payments-secret", project="secret")
    await factories.version(
        api, hidden["id"], metrics=[{"name": "auc", "value": 0.99, "dataset": "holdout"}]
    )
    await index(database, backend)
    query = {
        "facets": ["project", "stage"],
        "metricStats": [{"name": "auc", "dataset": "holdout"}],
        "first": 50,
    }
    api.search = backend
    everything = (await api(SEARCH, input=query))["search"]
    policy = Policy(policy_in(tmp_path / "policies", PEOPLE))
    erin = Principal(subject="erin", method=Method.BEARER)  # a viewer of fraud only
    viewer = Api(database, actor="erin", search=backend, access=access_of(policy, erin))
    seen = (await viewer(SEARCH, input=query))["search"]
    assert seen["totalCount"] < everything["totalCount"]
    assert {
        b["value"] for f in seen["facets"] if f["facet"] == "project" for b in f["buckets"]
    } == {"fraud"}
    names = [e["node"].get("name") or e["node"].get("model", {}).get("name") for e in seen["edges"]]
    assert "payments-secret" not in names
    stats = {(s["name"], s["dataset"]): s["count"] for s in seen["metricStats"]}
    all_stats = {(s["name"], s["dataset"]): s["count"] for s in everything["metricStats"]}
    assert stats[("auc", "holdout")] == all_stats[("auc", "holdout")] - 1
