"""Seed an MLflow tracking server over its REST API with the benchmark catalog of bench/seed.py.

Every model of the plan becomes a registered model (its tags); every version a run (its holdout
metrics as `accuracy` and `auc`, the train ones as `accuracy_train` and `auc_train`, its
hyperparameters as params) and a model version of that run (tags: framework, stage, run).
MLflow keeps no dataset per metric and no stage of its own that is not deprecated, hence the
metric names and the stage tag. Everything goes over HTTP, so the time is MLflow's write path.

    python bench/mlflow_seed.py --url http://127.0.0.1:5000 --models 2000
"""

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import ModelPlan, plan

API = "/api/2.0/mlflow"
EXPERIMENT = "bench"


class Rest:
    """POSTs to MLflow, retried with backoff on a busy SQLite (5xx) or a dropped connection."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.calls = 0

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        for attempt in range(8):
            try:
                response = await self.http.post(API + path, json=body)
            except httpx.TransportError:
                # A worker that uvicorn restarts drops its connections (seen right after start).
                response = None
            self.calls += 1
            if response is not None and response.status_code == 200:
                return response.json()
            if response is not None and response.status_code < 500:
                if attempt and "RESOURCE_ALREADY_EXISTS" in response.text:
                    return response.json()  # the dropped attempt had gone through
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            await asyncio.sleep(0.05 * 2**attempt * random.random())
        raise RuntimeError(f"{path}: still failing after 8 attempts")


def _pairs(values: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": k, "value": str(v)} for k, v in values.items()]


async def seed_model(rest: Rest, experiment_id: str, model: ModelPlan) -> None:
    await rest.post(
        "/registered-models/create",
        {
            "name": model.name,
            "description": f"Benchmark model {model.index}",
            "tags": _pairs(model.tags),
        },
    )
    now = int(time.time() * 1000)
    for n, version in enumerate(model.versions, start=1):
        run = await rest.post(
            "/runs/create",
            {"experiment_id": experiment_id, "run_name": f"{model.name}-v{n}", "start_time": now},
        )
        run_id = run["run"]["info"]["run_id"]
        metrics = [
            {
                "key": name if dataset == "holdout" else f"{name}_{dataset}",
                "value": value,
                "timestamp": now,
                "step": 0,
            }
            for name, dataset, value in version.metrics
        ]
        await rest.post(
            "/runs/log-batch",
            {"run_id": run_id, "metrics": metrics, "params": _pairs(version.hyperparameters)},
        )
        tags = {"framework": version.framework, "stage": version.stage.value, **version.tags}
        await rest.post(
            "/model-versions/create",
            {
                "name": model.name,
                "source": version.artifact_uri,
                "run_id": run_id,
                "tags": _pairs(tags),
            },
        )


async def seed(url: str, models: int, concurrency: int = 8) -> dict[str, Any]:
    """Write the plan's ``models`` models; returns counts and rates."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        rest = Rest(http)
        found = await http.get(
            API + "/experiments/get-by-name", params={"experiment_name": EXPERIMENT}
        )
        if found.status_code == 200:
            experiment_id = found.json()["experiment"]["experiment_id"]
        else:
            experiment_id = (await rest.post("/experiments/create", {"name": EXPERIMENT}))[
                "experiment_id"
            ]
        queue = list(plan(models))
        versions = sum(len(m.versions) for m in queue)
        queue.reverse()
        started = time.perf_counter()

        async def writer() -> None:
            while queue:
                await seed_model(rest, experiment_id, queue.pop())

        await asyncio.gather(*(writer() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "models": models,
        "versions": versions,
        "http_calls": rest.calls,
        "elapsed_s": round(elapsed, 1),
        "versions_per_s": round(versions / elapsed, 1),
        "calls_per_s": round(rest.calls / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(seed(args.url, args.models, args.concurrency))))


if __name__ == "__main__":
    main()
