"""A small catalog for the search suites, and indexing it."""

from typing import Any

from mlcatalog.search.backend import SearchBackend
from mlcatalog.search.indexer import Indexer
from mlcatalog.store.database import Database
from tests import factories
from tests.conftest import Api

DOCUMENTS = 9  # 3 models, 3 versions, a dataset, an experiment, a run


async def index(database: Database, backend: SearchBackend) -> None:
    await Indexer(database, backend, name="opensearch").catch_up()
    await backend.refresh()


def metric(name: str, value: float, dataset: str) -> dict[str, Any]:
    return {"name": name, "value": value, "dataset": dataset}


async def catalog(api: Api) -> dict[str, Any]:
    """Three versions of three models with different frameworks, stages, tags and metrics, a
    dataset tagged pii that one of them and a run were trained on, and the run's experiment:
    DOCUMENTS documents in all."""
    await factories.project(api)
    pii = await factories.dataset(api, "customers", tags=[{"key": "pii", "value": "true"}])
    pii_v1 = await factories.dataset_version(api, pii["id"])
    made = {}
    for name, framework, stage, team, holdout, train in [
        ("fraud-detector", "pytorch", "PRODUCTION", "risk", 0.95, 0.80),
        ("churn-model", "xgboost", "STAGING", "growth", 0.85, 0.97),
        ("spam-filter", "sklearn", "PRODUCTION", "risk", 0.91, 0.92),
    ]:
        model = await factories.model(
            api,
            name=name,
            description=f"{name.replace('-', ' ')} for payments",
            tags=[{"key": "team", "value": team}],
        )
        made[name] = await factories.version(
            api,
            model["id"],
            framework=framework,
            stage=stage,
            metrics=[metric("auc", holdout, "holdout"), metric("auc", train, "train")],
            trainingDatasets=[pii_v1["id"]] if name == "spam-filter" else [],
        )
    # A run that read the pii data and logged a loss curve: the newest step is what search sees.
    run = await factories.run(
        api, experiment="spam-tuning", description="tuning the spam filter", inputs=[pii_v1["id"]]
    )
    await api(
        "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { run { id } } }",
        input={
            "id": run["id"],
            "metrics": [
                {"name": "loss", "value": 0.9, "step": 1},
                {"name": "loss", "value": 0.2, "step": 2},
            ],
        },
    )
    return made
