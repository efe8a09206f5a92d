"""mlcatalog's side of the load scenarios, for bench/load.py: GraphQL POST bodies, cycled over the
seeded models. a, d and e answer what bench/mlflow_scenarios.py asks MLflow.

The models are bench/seed.py's (BENCH_MODELS of them), or those named in the file
BENCH_MODEL_NAMES names, one per line (bench/scale.py's catalog names its models otherwise)."""

import base64
import itertools
import os
from pathlib import Path
from typing import Any

MODELS = int(os.environ.get("BENCH_MODELS", "2000"))
NAMES = (
    Path(os.environ["BENCH_MODEL_NAMES"]).read_text().split()
    if os.environ.get("BENCH_MODEL_NAMES")
    else [f"model-{i:05}" for i in range(0, MODELS, 7)]
)

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


# The auditor's question: which data trained the version in production, and what happened to
# that version (the journal). Two requests, as a client must first learn the version's id.
PRODUCTION_VERSION = """
query($name: String!) { model(project: "bench", name: $name) { productionVersion { id } } }
"""
AUDIT = """
query($id: ID!) {
  lineage(id: $id, direction: UPSTREAM, depth: 3, limit: 50) {
    nodes {
      __typename
      ... on DatasetVersion { label uri dataset { name } }
      ... on Run { name }
    }
    edges { kind depth }
  }
  history(id: $id, first: 20) { edges { node { sequence action at actor before after } } }
}
"""

# One version registered per request, as a pipeline does: the fields MLflow's seeder writes
# (bench/mlflow_seed.py: a run with 4 metrics and the hyperparameters, then the version with its
# tags), in one mutation. The seeded models' ids are 1..MODELS in a fresh catalog.
REGISTER_VERSION = """
mutation($model: ID!) {
  createModelVersion(input: {
    model: $model
    framework: "pytorch"
    artifact: {uri: "s3://bench/artifacts/model.pt"}
    hyperparameters: {lr: 0.001, epochs: 10}
    tags: [{key: "team", value: "bench"}, {key: "source", value: "pipeline"}]
    metrics: [
      {name: "accuracy", value: 0.93, dataset: "holdout"}
      {name: "auc", value: 0.95, dataset: "holdout"}
      {name: "f1", value: 0.91, dataset: "holdout"}
      {name: "accuracy", value: 0.97, dataset: "train"}
    ]
  }) { modelVersion { number } }
}
"""


def _model_id(row_id: int) -> str:
    return base64.b64encode(f"Model:{row_id}".encode()).decode()


def _post(query: str, variables: dict[str, object]) -> dict[str, object]:
    return {"method": "POST", "path": "/graphql", "json": {"query": query, "variables": variables}}


def _data(body: Any) -> Any:
    if body.get("errors") or not body.get("data"):
        raise RuntimeError(f"GraphQL errors: {str(body)[:300]}")
    return body["data"]


def _audit() -> Any:
    names = itertools.cycle(NAMES)

    async def run(client: Any) -> Any:
        name = next(names)
        found = await client.post(
            "/graphql", {"query": PRODUCTION_VERSION, "variables": {"name": name}}
        )
        version = _data(found)["model"]["productionVersion"]
        if version is None:
            raise RuntimeError(f"model {name} has no version in PRODUCTION")
        answer = await client.post("/graphql", {"query": AUDIT, "variables": {"id": version["id"]}})
        return _data(answer)

    return run


SCENARIOS = [
    {
        "name": "a_get_model",
        "note": "what MLflow's registered-models/get returns: a model, tags, latest versions",
        "requests": [_post(GET_MODEL, {"name": name}) for name in NAMES],
    },
    {
        "name": "model_page",
        "note": "a model, its latest 5 versions with metrics and tags, and its model card",
        "requests": [_post(MODEL_PAGE, {"name": name}) for name in NAMES],
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
    {
        "name": "lineage",
        "note": "the datasets upstream of a model's production version, and its journal history",
        "run": _audit(),
    },
    {
        "name": "register_version",
        "note": "one version with 4 metrics, hyperparameters and tags registered per request",
        "requests": [
            _post(REGISTER_VERSION, {"model": _model_id(i)}) for i in range(1, MODELS + 1, 7)
        ],
    },
]
