"""mlcatalog's side of the load scenarios, for bench/load.py: GraphQL POST bodies, cycled over the
seeded models. a, d and e answer what bench/mlflow_scenarios.py asks MLflow."""

import os

MODELS = int(os.environ.get("BENCH_MODELS", "2000"))

MODEL_PAGE = """
query($name: String!) {
  model(project: "bench", name: $name) {
    id name description owner task tags { key value }
    card { intendedUse markdown revision }
    versions(first: 5) {
      totalCount
      edges { node {
        id number version stage framework createdAt
        tags { key value }
        metrics(first: 10) { edges { node { name value dataset } } }
      } }
    }
  }
}
"""

# What MLflow's registered-models/get returns (scenario a): the model record, its tags and
# aliases, and its latest versions.
GET_MODEL = """
query($name: String!) {
  model(project: "bench", name: $name) {
    id name description owner createdAt updatedAt tags { key value }
    aliases { name }
    latestVersion { number stage framework createdAt }
    productionVersion { number stage framework createdAt }
  }
}
"""

PRODUCTION_LIST = """
query($after: String) {
  models(filter: {project: "bench"}, first: 50, after: $after) {
    totalCount
    edges { node { name owner productionVersion {
      number version framework accuracy: metric(name: "accuracy", dataset: "holdout") } } }
  }
}
"""


# MLflow's scenarios d and e (bench/mlflow_scenarios.py) under the same ids: MLflow answers d with
# runs/search then model-versions/search, e by paging through every version. MLflow's `accuracy`
# is the holdout one (bench/mlflow_seed.py), so d asks for the holdout accuracy here too.
TOP_ACCURACY = """
{
  search(input: {
    entityTypes: [MODEL_VERSION]
    metrics: [{name: "accuracy", dataset: "holdout", gt: 0.9}]
    sort: [{by: METRIC, metric: "accuracy", dataset: "holdout", direction: DESC}]
    first: 50
  }) {
    totalCount
    edges { node { ... on ModelVersion { number framework model { name } } } }
  }
}
"""

FRAMEWORK_COUNTS = """
{
  search(input: {entityTypes: [MODEL_VERSION], facets: ["framework"], first: 0}) {
    totalCount
    facets { facet buckets { value count } }
  }
}
"""


def _post(query: str, variables: dict[str, object]) -> dict[str, object]:
    return {"method": "POST", "path": "/graphql", "json": {"query": query, "variables": variables}}


SCENARIOS = [
    {
        "name": "a_get_model",
        "note": "what MLflow's registered-models/get returns: a model, tags, latest versions",
        "requests": [_post(GET_MODEL, {"name": f"model-{i:05}"}) for i in range(0, MODELS, 7)],
    },
    {
        "name": "model_page",
        "note": "a model, its latest 5 versions with metrics and tags, and its model card",
        "requests": [_post(MODEL_PAGE, {"name": f"model-{i:05}"}) for i in range(0, MODELS, 7)],
    },
    {
        "name": "repeated_read",
        "note": "the model page of one model, again and again (no write between): the cache",
        "requests": [_post(MODEL_PAGE, {"name": "model-00000"})],
    },
    {
        "name": "list_50_production",
        "note": "50 models with their production version and its holdout accuracy",
        "requests": [_post(PRODUCTION_LIST, {"after": None})],
    },
    {
        "name": "d_acc_gt_09_top50",
        "note": "the 50 versions with the best accuracy above 0.9, with the total (search)",
        "requests": [_post(TOP_ACCURACY, {})],
    },
    {
        "name": "e_facet_framework",
        "note": "version counts per framework (search facet)",
        "requests": [_post(FRAMEWORK_COUNTS, {})],
    },
]
