"""No N+1: a page of models with nested fields costs the same statements for 10 or 100 models."""

from pathlib import Path

from mlcatalog.auth.access import AUTHENTICATED, Grant, Policy
from tests import factories
from tests.conftest import Api
from tests.policies import policy_in

DASHBOARD = """
query($first: Int!) {
  models(first: $first) {
    totalCount
    edges {
      node {
        name owner tags { key value } project { name }
        latestVersion {
          number stage tags { key value }
          metrics(first: 10) { edges { node { name value dataset } } }
          auc: metric(name: "auc", dataset: "holdout")
        }
        productionVersion { number }
        versions(first: 5) { totalCount edges { node { number } } }
        card { intendedUse }
      }
    }
  }
}
"""


# page, count, projects, model tags, latest versions, production versions, version tags,
# metric pages, metric values, version pages (with their counts), cards.
EXPECTED_STATEMENTS = 11


async def add_models(api: Api, start: int, stop: int) -> None:
    for i in range(start, stop):
        model = await factories.model(api, name=f"m{i:03}", tags=[{"key": "team", "value": "risk"}])
        await factories.version(
            api,
            model["id"],
            stage="PRODUCTION",
            tags=[{"key": "pii", "value": "false"}],
            metrics=[
                {"name": "auc", "value": 0.9, "dataset": "holdout"},
                {"name": "f1", "value": 0.8},
            ],
        )
        await factories.version(
            api, model["id"], metrics=[{"name": "auc", "value": 0.9, "dataset": "holdout"}]
        )


async def statements_for_page(api: Api, count: int) -> int:
    counter = api.count_statements()
    data = await api(DASHBOARD, first=count)
    edges = data["models"]["edges"]
    assert len(edges) == count
    assert all(e["node"]["latestVersion"]["number"] == 2 for e in edges)
    assert all(e["node"]["latestVersion"]["auc"] == 0.9 for e in edges)
    assert all(e["node"]["productionVersion"] == {"number": 1} for e in edges)
    return len(counter)


async def test_a_hundred_models_cost_the_statements_ten_cost(api: Api) -> None:
    await factories.project(api)
    await add_models(api, 0, 10)
    ten = await statements_for_page(api, 10)
    await add_models(api, 10, 100)
    hundred = await statements_for_page(api, 100)
    assert ten == hundred == EXPECTED_STATEMENTS


MODEL_PAGE = """
query($versions: Int, $after: String, $stages: [Stage!]) {
  model(project: "fraud", name: "fraud-detector") {
    id name description owner task tags { key value }
    card { intendedUse markdown revision }
    versions(first: $versions, after: $after, stages: $stages) {
      totalCount
      pageInfo { endCursor }
      edges { node {
        id number version stage framework createdAt
        tags { key value }
        metrics(first: 10) { totalCount edges { node { name value dataset } } }
      } }
    }
  }
}
"""
# model, its tags, its card, the versions' page with their count (one window statement), the
# versions' tags, their metrics' pages with their counts.
MODEL_PAGE_STATEMENTS = 6


async def test_the_model_page_counts_its_lists_in_their_page_statements(
    api: Api, tmp_path: Path
) -> None:
    await factories.project(api)
    model = await factories.model(api, tags=[{"key": "team", "value": "risk"}])
    for n in range(7):
        await factories.version(
            api,
            model["id"],
            stage="STAGING" if n in (1, 4) else "NONE",
            tags=[{"key": "run", "value": str(n)}],
            metrics=[{"name": f"m{i}", "value": i / 10, "dataset": "holdout"} for i in range(n)],
        )
    await api(
        'mutation($id: ID!) { upsertDocument(input: {subject: $id, intendedUse: "Scores"}) {'
        " document { revision } } }",
        id=model["id"],
    )
    counter = api.count_statements()
    page = (await api(MODEL_PAGE, versions=5))["model"]
    assert len(counter) == MODEL_PAGE_STATEMENTS, counter.statements
    versions = page["versions"]
    assert versions["totalCount"] == 7
    assert [e["node"]["number"] for e in versions["edges"]] == [7, 6, 5, 4, 3]
    assert [e["node"]["metrics"]["totalCount"] for e in versions["edges"]] == [6, 5, 4, 3, 2]
    assert page["card"]["intendedUse"] == "Scores"

    # A later page (a cursor) counts in a statement of its own; the count is the whole list's.
    after = versions["pageInfo"]["endCursor"]
    later = (await api(MODEL_PAGE, versions=5, after=after))["model"]["versions"]
    assert later["totalCount"] == 7
    assert [e["node"]["number"] for e in later["edges"]] == [2, 1]
    # Filters count what they keep; an empty page counts 0.
    staging = (await api(MODEL_PAGE, versions=1, stages=["STAGING"]))["model"]["versions"]
    assert staging["totalCount"] == 2
    assert [e["node"]["number"] for e in staging["edges"]] == [5]
    none = (await api(MODEL_PAGE, versions=5, stages=["ARCHIVED"]))["model"]["versions"]
    assert none == {"totalCount": 0, "pageInfo": {"endCursor": None}, "edges": []}

    # A viewer of the project (an API token's grants) reads the same page; the authorizer's
    # check that each version is of a project it sees adds the project's row, not the models'.
    policy = Policy(policy_in(tmp_path / "policies", ""))
    viewer = Api(
        api.database,
        actor="token:viewer",
        access=policy.access((Grant("viewer", "fraud"), Grant(AUTHENTICATED, "fraud"))),
    )
    counter = viewer.count_statements()
    assert (await viewer(MODEL_PAGE, versions=5))["model"] == page
    assert len(counter) == MODEL_PAGE_STATEMENTS + 1, counter.statements
