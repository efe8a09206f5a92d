"""The deterministic demo catalog: written through the catalog's rules, so it is journaled too."""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlcatalog.catalog import datasets, documents, experiments, lineage, models, projects, versions
from mlcatalog.catalog.experiments import Pipeline, RunMetric, RunStatus
from mlcatalog.catalog.lineage import EdgeKind
from mlcatalog.catalog.versions import Artifact, CodeReference, Environment, MetricValue, Stage
from mlcatalog.store.database import Database, Origin

# project → (domain, team, [(model name, task, datasets it trains on)])
PROJECTS = {
    "fraud": ("payments", "risk", ["fraud-detector", "chargeback-predictor", "merchant-risk"]),
    "search": ("discovery", "search", ["query-ranker", "spell-corrector", "embedding-encoder"]),
    "vision": (
        "catalog-images",
        "vision",
        ["product-detector", "image-tagger", "defect-segmenter"],
    ),
    "forecasting": (
        "supply",
        "planning",
        ["demand-forecaster", "price-elasticity", "stockout-risk"],
    ),
}
TASKS = {
    "fraud-detector": "classification",
    "chargeback-predictor": "classification",
    "merchant-risk": "regression",
    "query-ranker": "ranking",
    "spell-corrector": "generation",
    "embedding-encoder": "embedding",
    "product-detector": "detection",
    "image-tagger": "classification",
    "defect-segmenter": "segmentation",
    "demand-forecaster": "forecasting",
    "price-elasticity": "regression",
    "stockout-risk": "classification",
}
DATASETS = {
    "fraud": ["transactions", "chargebacks"],
    "search": ["query-logs", "click-judgements"],
    "vision": ["product-images", "defect-photos"],
    "forecasting": ["sales-history", "promotions"],
}
FRAMEWORKS = [
    ("pytorch", "2.5.1", "torchscript"),
    ("xgboost", "2.1.3", "onnx"),
    ("sklearn", "1.5.2", "joblib"),
    ("lightgbm", "4.5.0", "pickle"),
    ("tensorflow", "2.18.0", "safetensors"),
]
ALGORITHMS = {
    "pytorch": "transformer",
    "xgboost": "gradient boosted trees",
    "sklearn": "logistic regression",
    "lightgbm": "gradient boosted trees",
    "tensorflow": "convolutional network",
}
# Every model walks through the stages in this order; the newest version is still in DEVELOPMENT.
STAGES = [Stage.ARCHIVED, Stage.STAGING, Stage.PRODUCTION, Stage.NONE, Stage.DEVELOPMENT]
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoSummary:
    projects: int
    models: int
    versions: int
    datasets: int
    runs: int


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _card(model: str, task: str, data: str) -> dict[str, str | None]:
    return {
        "intended_use": f"{model} serves {task} for internal teams, not for decisions on people.",
        "factors": "Region, device and season shift the input distribution.",
        "training_data": f"Versions of {data}, deduplicated and split by time.",
        "evaluation_data": "The holdout split: the most recent four weeks, never trained on.",
        "quantitative_analyses": "accuracy, f1, auc on holdout; latency_ms at p95 on one core.",
        "ethical_considerations": "Features that identify people are tagged pii and reviewed.",
        "caveats_and_recommendations": "Retrain when holdout auc drops by more than 0.02.",
        "markdown": f"# {model}\n\nOwned by its team; see the versions for metrics and lineage.",
    }


async def load_demo(
    database: Database,
    *,
    origin: Origin,
    seed: int = 7,
    scale: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Fill ``database`` with a realistic catalog; the same seed gives the same catalog. The
    journal names ``origin`` (whoever loads it) as the actor; the demo's teams own what it makes."""
    rng = random.Random(seed)
    groups = [(p, i) for p in PROJECTS for i in range(scale)]
    done, total = 0, len(PROJECTS) + len(groups)
    counts = {"projects": 0, "models": 0, "versions": 0, "datasets": 0, "runs": 0}
    dataset_versions: dict[str, list[int]] = {}
    experiment_ids: dict[str, int] = {}
    for project_name, (domain, team, _) in PROJECTS.items():
        async with database.unit_of_work(origin) as uow:
            project = await projects.create_project(
                uow, name=project_name, description=f"{domain.title()} models and data"
            )
            counts["projects"] += 1
            ids = []
            for dataset_name in DATASETS[project_name]:
                dataset = await datasets.create_dataset(
                    uow,
                    project_id=project.id,
                    name=dataset_name,
                    owner=f"{team}-data",
                    description=f"{dataset_name.replace('-', ' ').title()} for {domain}",
                    source=f"warehouse://{project_name}/{dataset_name}",
                    tags={"team": team, "domain": domain, "pii": rng.choice(["true", "false"])},
                )
                counts["datasets"] += 1
                previous = None
                for month in range(1, 4):
                    data_version = await datasets.create_dataset_version(
                        uow,
                        dataset_id=dataset.id,
                        label=f"2026-0{month}",
                        uri=f"s3://{project_name}-data/{dataset_name}/2026-0{month}/",
                        digest=f"sha256:{_hex(rng, 64)}",
                        size_bytes=rng.randrange(10**8, 10**11),
                        row_count=rng.randrange(10**5, 10**8),
                        schema={
                            "columns": [
                                {"name": "id", "type": "string"},
                                {"name": "label", "type": "int"},
                            ]
                        },
                    )
                    if previous is not None:
                        await lineage.add_edge(
                            uow,
                            kind=EdgeKind.DERIVED_FROM,
                            upstream=("DatasetVersion", previous),
                            downstream=("DatasetVersion", data_version.id),
                        )
                    previous = data_version.id
                    ids.append(data_version.id)
                await documents.upsert_document(
                    uow,
                    subject_type="Dataset",
                    subject_id=dataset.id,
                    content={"markdown": f"# {dataset_name}\n\nCollected daily; {domain} events."},
                )
            dataset_versions[project_name] = ids
            experiment = await experiments.create_experiment(
                uow, project_id=project.id, name=f"{project_name}-training", owner=f"{team}-ml"
            )
            experiment_ids[project_name] = experiment.id
        done += 1
        if progress:
            progress(done, total)

    for project_name, copy in groups:
        domain, team, model_names = PROJECTS[project_name]
        async with database.unit_of_work(origin) as uow:
            project = await projects.project_by_name(uow, project_name)
            for base_name in model_names:
                name = base_name if copy == 0 else f"{base_name}-{copy}"
                task = TASKS[base_name]
                model = await models.register_model(
                    uow,
                    project_id=project.id,
                    name=name,
                    owner=f"{team}-ml",
                    description=f"{task.title()} model for {domain}",
                    task=task,
                    tags={"team": team, "domain": domain, "pii": rng.choice(["true", "false"])},
                )
                counts["models"] += 1
                framework, framework_version, artifact_format = rng.choice(FRAMEWORKS)
                data = dataset_versions[project_name]
                quality = rng.uniform(0.78, 0.9)
                previous_version = None
                for number, stage in enumerate(STAGES[: rng.randint(4, 5)], start=1):
                    quality = min(0.99, quality + rng.uniform(0.0, 0.03))
                    started = START + timedelta(days=30 * number + rng.randrange(20))
                    # A version of the project's first dataset, sometimes one of the second too.
                    trained_on = [data[rng.randrange(3)]]
                    if rng.random() < 0.5:
                        trained_on.append(data[3 + rng.randrange(3)])
                    run = await experiments.create_run(
                        uow,
                        experiment_id=experiment_ids[project_name],
                        name=f"{name}-train-{number}",
                        owner=f"{team}-ml",
                        params={
                            "learning_rate": f"{rng.choice([0.01, 0.03, 0.1])}",
                            "epochs": str(rng.randint(5, 50)),
                        },
                        started_at=started,
                        hardware=rng.choice(["8 vCPU / 32 GiB", "16 vCPU / 64 GiB"]),
                        accelerator=rng.choice([None, "NVIDIA A10G", "NVIDIA A100"]),
                        pipeline=Pipeline(
                            name=f"{project_name}-nightly", run_id=str(rng.randrange(10**6))
                        ),
                        code_version=_hex(rng, 40),
                        input_dataset_version_ids=trained_on,
                    )
                    loss = 1.0
                    await experiments.log_run_metrics(
                        uow,
                        run_id=run.id,
                        metrics=[
                            RunMetric("loss", (loss := loss * rng.uniform(0.6, 0.9)), step)
                            for step in range(5)
                        ],
                    )
                    await experiments.finish_run(
                        uow,
                        run_id=run.id,
                        status=RunStatus.FINISHED,
                        ended_at=started + timedelta(minutes=rng.randint(20, 300)),
                    )
                    counts["runs"] += 1
                    version = await versions.create_model_version(
                        uow,
                        model_id=model.id,
                        semver=f"1.{number - 1}.0",
                        description=f"Retrained on {len(trained_on)} months of data",
                        stage=stage,
                        artifact=Artifact(
                            uri=f"s3://{project_name}-models/{name}/{number}/model.{artifact_format}",
                            format=artifact_format,
                            size=rng.randrange(10**6, 10**9),
                            sha256=_hex(rng, 64),
                        ),
                        framework=framework,
                        framework_version=framework_version,
                        algorithm=ALGORITHMS[framework],
                        hyperparameters={
                            "learning_rate": rng.choice([0.01, 0.03, 0.1]),
                            "max_depth": rng.randint(3, 12),
                        },
                        tags={"team": team, "pii": rng.choice(["true", "false"])},
                        metrics=[
                            MetricValue(metric, round(value, 4), dataset=split)
                            for split, shift in (("train", 0.03), ("holdout", 0.0))
                            for metric, value in (
                                ("accuracy", quality + shift),
                                ("f1", quality - 0.04 + shift),
                                ("auc", min(0.999, quality + 0.05 + shift)),
                                ("latency_ms", rng.uniform(2, 40)),
                            )
                        ],
                        code=CodeReference(
                            repository=f"https://git.example.com/{project_name}/{base_name}",
                            commit=_hex(rng, 40),
                            path="train.py",
                        ),
                        environment=Environment(
                            python_version="3.11",
                            packages={framework: framework_version, "numpy": "2.1.3"},
                            container_image=f"registry.example.com/{project_name}/train:{number}",
                        ),
                        source_run_id=run.id,
                        training_dataset_version_ids=trained_on,
                        evaluation_dataset_version_ids=[data[-1]],
                    )
                    counts["versions"] += 1
                    if previous_version is not None and rng.random() < 0.3:
                        await lineage.add_edge(
                            uow,
                            kind=EdgeKind.DERIVED_FROM,
                            upstream=("ModelVersion", previous_version),
                            downstream=("ModelVersion", version.id),
                        )
                    if stage == Stage.PRODUCTION:
                        await versions.set_alias(uow, version_id=version.id, alias="champion")
                        await versions.add_comment(
                            uow,
                            version_id=version.id,
                            body="Approved for production after shadow traffic.",
                        )
                    elif stage == Stage.STAGING:
                        await versions.set_alias(uow, version_id=version.id, alias="challenger")
                    previous_version = version.id
                card = _card(name, task, DATASETS[project_name][0])
                await documents.upsert_document(
                    uow, subject_type="Model", subject_id=model.id, content=card
                )
                if rng.random() < 0.5:
                    await documents.upsert_document(
                        uow,
                        subject_type="Model",
                        subject_id=model.id,
                        content={
                            "caveats_and_recommendations": "Recalibrate monthly; watch drift."
                        },
                    )
        done += 1
        if progress:
            progress(done, total)
    return DemoSummary(**counts)
