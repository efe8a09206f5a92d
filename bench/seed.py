"""Seed a catalog of N model versions for the benchmarks, through the catalog's own rules."""

import asyncio
import random
import sys
import time

from mlcatalog.catalog import documents, models, projects, versions
from mlcatalog.catalog.versions import Artifact, MetricValue, Stage
from mlcatalog.store import migrate
from mlcatalog.store.database import Database

VERSIONS_PER_MODEL = 5
FRAMEWORKS = ["pytorch", "xgboost", "sklearn", "lightgbm", "tensorflow"]
TEAMS = ["risk", "growth", "search", "vision", "ads"]


def model_name(i: int) -> str:
    return f"model-{i:05}"


async def seed(url: str, total_versions: int, seed_value: int = 42) -> float:
    """Fill ``url`` with total_versions / 5 models of 5 versions; returns versions per second."""
    rng = random.Random(seed_value)
    database = Database(url)
    await migrate.upgrade(database)
    started = time.perf_counter()
    async with database.unit_of_work("bench") as uow:
        project = await projects.create_project(uow, name="bench", description="benchmark catalog")
    for i in range(total_versions // VERSIONS_PER_MODEL):
        async with database.unit_of_work("bench") as uow:
            model = await models.register_model(
                uow,
                project_id=project.id,
                name=model_name(i),
                description=f"Benchmark model {i}",
                task="classification",
                tags={"team": rng.choice(TEAMS), "pii": rng.choice(["true", "false"])},
            )
            production = rng.randrange(VERSIONS_PER_MODEL)
            for n in range(VERSIONS_PER_MODEL):
                await versions.create_model_version(
                    uow,
                    model_id=model.id,
                    semver=f"1.{n}.0",
                    stage=Stage.PRODUCTION if n == production else rng.choice(list(Stage)[:3]),
                    framework=rng.choice(FRAMEWORKS),
                    artifact=Artifact(
                        uri=f"s3://bench/{i}/{n}", format="onnx", size=rng.randrange(10**9)
                    ),
                    hyperparameters={"lr": rng.random(), "depth": rng.randrange(2, 12)},
                    tags={"run": str(rng.randrange(10**6))},
                    metrics=[
                        MetricValue(name, rng.random(), dataset=dataset)
                        for name in ("accuracy", "auc")
                        for dataset in ("train", "holdout")
                    ],
                )
            await documents.upsert_document(
                uow,
                subject_type="Model",
                subject_id=model.id,
                content={"intended_use": f"Scores things for team {i % 7}", "markdown": "# Card"},
            )
    rate = total_versions / (time.perf_counter() - started)
    await database.dispose()
    return rate


if __name__ == "__main__":
    url, count = sys.argv[1], int(sys.argv[2])
    print(f"seeded {count} versions at {asyncio.run(seed(url, count)):.0f} versions/s")
