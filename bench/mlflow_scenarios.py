"""MLflow's side of the scenarios a_get_model, d_acc_gt_09_top50, e_facet_framework and
register_version (for bench/load.py), on the catalog bench/mlflow_seed.py writes. d and e are
composites: MLflow answers d with two calls and has no aggregation for e, so a client pages
through every version; registering a version takes it three calls."""

import os
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # load.py imports this file by path: the client is only a type here
    from bench.load import Client

API = "/api/2.0/mlflow"
MODELS = int(os.environ.get("BENCH_MODELS", "2000"))
PAGE = 1000
EXPERIMENTS: list[str] = []
REGISTERED = [0]


async def setup(client: "Client") -> None:
    """A client looks the experiment ids up once (runs/search needs them)."""
    found = await client.post(API + "/experiments/search", {"max_results": 1000})
    EXPERIMENTS[:] = [e["experiment_id"] for e in found.get("experiments", [])]


async def top_accuracy(client: "Client") -> dict[str, int]:
    runs = await client.post(
        API + "/runs/search",
        {
            "experiment_ids": EXPERIMENTS,
            "filter": "metrics.accuracy > 0.9",
            "order_by": ["metrics.accuracy DESC"],
            "max_results": 50,
        },
    )
    ids = [r["info"]["run_id"] for r in runs.get("runs", [])]
    if not ids:
        return {"versions": 0}
    found = await client.get(
        API + "/model-versions/search",
        {"filter": "run_id IN (" + ",".join(f"'{i}'" for i in ids) + ")", "max_results": 50},
    )
    return {"versions": len(found.get("model_versions", []))}


async def framework_counts(client: "Client") -> dict[str, int]:
    counts: Counter[str] = Counter()
    token = None
    while True:
        params: dict[str, Any] = {"max_results": PAGE}
        if token:
            params["page_token"] = token
        page = await client.get(API + "/model-versions/search", params)
        for version in page.get("model_versions", []):
            counts.update(t["value"] for t in version.get("tags", []) if t["key"] == "framework")
        token = page.get("next_page_token")
        if not token:
            return dict(counts)


async def register_version(client: "Client") -> dict[str, int]:
    """What bench/mlflow_seed.py does per version: a run with its metrics and parameters, then
    the version on it with its tags (three calls), on a model cycled over the seeded ones."""
    REGISTERED[0] += 1
    name = f"model-{(REGISTERED[0] * 7) % MODELS:05}"
    run = await client.post(API + "/runs/create", {"experiment_id": EXPERIMENTS[0]})
    run_id = run["run"]["info"]["run_id"]
    metrics = [
        {"key": key, "value": value, "timestamp": 0, "step": 0}
        for key, value in (
            ("accuracy", 0.93),
            ("auc", 0.95),
            ("f1", 0.91),
            ("accuracy_train", 0.97),
        )
    ]
    params = [{"key": "lr", "value": "0.001"}, {"key": "epochs", "value": "10"}]
    await client.post(
        API + "/runs/log-batch", {"run_id": run_id, "metrics": metrics, "params": params}
    )
    tags = [{"key": "framework", "value": "pytorch"}, {"key": "team", "value": "bench"}]
    created = await client.post(
        API + "/model-versions/create",
        {"name": name, "source": "s3://bench/artifacts/model.pt", "run_id": run_id, "tags": tags},
    )
    return {"version": int(created["model_version"]["version"])}


SCENARIOS = [
    {
        "name": "a_get_model",
        "note": "registered-models/get: the model, its tags, aliases and latest versions",
        "requests": [
            {
                "method": "GET",
                "path": API + "/registered-models/get",
                "params": {"name": f"model-{i:05}"},
            }
            for i in range(0, MODELS, 7)
        ],
    },
    {
        "name": "d_acc_gt_09_top50",
        "note": "runs/search accuracy > 0.9, best 50; model-versions/search on their runs",
        "run": top_accuracy,
    },
    {
        "name": "e_facet_framework",
        "note": "every version paged through (1,000 a page), framework tags counted client-side",
        "run": framework_counts,
    },
    {
        "name": "register_version",
        "note": "runs/create, runs/log-batch (4 metrics, 2 params), model-versions/create (tags)",
        "run": register_version,
    },
]
