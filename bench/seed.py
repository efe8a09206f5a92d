"""Seed a catalog of N model versions for the benchmarks, through the catalog's own rules.

``plan`` draws the catalog (deterministic for a seed); ``seed`` writes it into mlcatalog and
bench/mlflow_seed.py writes the same plan into MLflow, so both serve the same data.
"""

import asyncio
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from mlcatalog.catalog import documents, models, projects, versions
from mlcatalog.catalog.versions import Artifact, MetricValue, Stage
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, Origin

VERSIONS_PER_MODEL = 5
FRAMEWORKS = ["pytorch", "xgboost", "sklearn", "lightgbm", "tensorflow"]
TEAMS = ["risk", "growth", "search", "vision", "ads"]
BENCH = Origin(actor="bench")
PROJECT = "bench"


def model_name(i: int) -> str:
    return f"model-{i:05}"


@dataclass(frozen=True)
class VersionPlan:
    semver: str
    stage: Stage
    framework: str
    artifact_uri: str
    artifact_size: int
    hyperparameters: dict[str, float | int]
    tags: dict[str, str]
    metrics: list[tuple[str, str, float]]  # (name, dataset, value)


@dataclass(frozen=True)
class ModelPlan:
    index: int
    name: str
    tags: dict[str, str]
    versions: list[VersionPlan]


def plan(models_count: int, seed_value: int = 42) -> Iterator[ModelPlan]:
    """The benchmark catalog: ``models_count`` models of 5 versions, one in PRODUCTION each."""
    rng = random.Random(seed_value)
    for i in range(models_count):
        tags = {"team": rng.choice(TEAMS), "pii": rng.choice(["true", "false"])}
        production = rng.randrange(VERSIONS_PER_MODEL)
        planned = []
        for n in range(VERSIONS_PER_MODEL):
            stage = Stage.PRODUCTION if n == production else rng.choice(list(Stage)[:3])
            framework = rng.choice(FRAMEWORKS)
            size = rng.randrange(10**9)
            hyperparameters = {"lr": rng.random(), "depth": rng.randrange(2, 12)}
            run_tag = str(rng.randrange(10**6))
            metrics = [
                (name, dataset, rng.random())
                for name in ("accuracy", "auc")
                for dataset in ("train", "holdout")
            ]
            planned.append(
                VersionPlan(
                    semver=f"1.{n}.0",
                    stage=stage,
                    framework=framework,
                    artifact_uri=f"s3://bench/{i}/{n}",
                    artifact_size=size,
                    hyperparameters=hyperparameters,
                    tags={"run": run_tag},
                    metrics=metrics,
                )
            )
        yield ModelPlan(index=i, name=model_name(i), tags=tags, versions=planned)


async def seed(url: str, total_versions: int, seed_value: int = 42) -> float:
    """Fill ``url`` with total_versions / 5 models of 5 versions; returns versions per second."""
    database = Database(url)
    await migrate.upgrade(database)
    started = time.perf_counter()
    async with database.unit_of_work(BENCH) as uow:
        project = await projects.create_project(uow, name=PROJECT, description="benchmark catalog")
    for model_plan in plan(total_versions // VERSIONS_PER_MODEL, seed_value):
        async with database.unit_of_work(BENCH) as uow:
            model = await models.register_model(
                uow,
                project_id=project.id,
                name=model_plan.name,
                description=f"Benchmark model {model_plan.index}",
                task="classification",
                tags=model_plan.tags,
            )
            for version in model_plan.versions:
                await versions.create_model_version(
                    uow,
                    model_id=model.id,
                    semver=version.semver,
                    stage=version.stage,
                    framework=version.framework,
                    artifact=Artifact(
                        uri=version.artifact_uri, format="onnx", size=version.artifact_size
                    ),
                    hyperparameters=version.hyperparameters,
                    tags=version.tags,
                    metrics=[MetricValue(n, v, dataset=d) for n, d, v in version.metrics],
                )
            await documents.upsert_document(
                uow,
                subject_type="Model",
                subject_id=model.id,
                content={
                    "intended_use": f"Scores things for team {model_plan.index % 7}",
                    "markdown": "# Card",
                },
            )
    rate = total_versions / (time.perf_counter() - started)
    await database.dispose()
    return rate


if __name__ == "__main__":
    url, count = sys.argv[1], int(sys.argv[2])
    print(f"seeded {count} versions at {asyncio.run(seed(url, count)):.0f} versions/s")
