"""No N+1: a page of models with nested fields costs the same statements for 10 or 100 models."""

from tests import factories
from tests.conftest import Api

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
# metric pages, metric values, version pages, version counts, cards.
EXPECTED_STATEMENTS = 12


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
