"""The demo catalog: deterministic, complete, and the README's tour works on it."""

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mlcatalog.api.context import Context
from mlcatalog.api.schema import schema
from mlcatalog.demo import load_demo
from mlcatalog.search.maintenance import reindex
from mlcatalog.search.sql import SqlSearchBackend
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import MetricRow, ModelRow, ModelVersionRow, ModelVersionTagRow

README = Path(__file__).resolve().parents[1] / "README.md"


async def demo_database(path: Path, seed: int) -> Database:
    database = Database(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(database)
    await load_demo(database, origin=Origin(actor="demo"), seed=seed)
    return database


async def dump(database: Database) -> list[tuple[Any, ...]]:
    """The catalog's content without ids and timestamps."""
    async with database.read() as session:
        rows = await session.execute(
            select(
                ModelRow.name,
                ModelVersionRow.number,
                ModelVersionRow.semver,
                ModelVersionRow.stage,
                ModelVersionRow.framework,
                ModelVersionRow.artifact_sha256,
                MetricRow.name,
                MetricRow.dataset,
                MetricRow.value,
            )
            .join(ModelVersionRow, ModelVersionRow.model_id == ModelRow.id)
            .join(MetricRow, MetricRow.version_id == ModelVersionRow.id)
            .order_by(ModelRow.name, ModelVersionRow.number, MetricRow.name, MetricRow.dataset)
        )
        tags = await session.execute(
            select(ModelVersionTagRow.key, ModelVersionTagRow.value).order_by(
                ModelVersionTagRow.version_id, ModelVersionTagRow.key
            )
        )
        return [tuple(r) for r in rows] + [tuple(t) for t in tags]


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = await demo_database(tmp_path_factory.mktemp("demo") / "a.db", seed=7)
    yield database
    await database.dispose()


async def test_the_same_seed_gives_the_same_catalog_and_another_seed_another(
    demo: Database, tmp_path: Path
) -> None:
    again = await demo_database(tmp_path / "b.db", seed=7)
    other = await demo_database(tmp_path / "c.db", seed=8)
    try:
        first = await dump(demo)
        assert len(first) > 400
        assert await dump(again) == first
        assert await dump(other) != first
    finally:
        await again.dispose()
        await other.dispose()


async def test_the_demo_covers_stages_frameworks_metrics_and_splits(demo: Database) -> None:
    async with demo.read() as session:
        versions = list(
            await session.execute(
                select(ModelVersionRow.model_id, ModelVersionRow.stage, ModelVersionRow.framework)
            )
        )
        metrics = set(await session.execute(select(MetricRow.name, MetricRow.dataset).distinct()))
    assert {stage for _, stage, _ in versions} == {
        "NONE",
        "DEVELOPMENT",
        "STAGING",
        "PRODUCTION",
        "ARCHIVED",
    }
    assert len({framework for _, _, framework in versions}) >= 4
    for name in ("accuracy", "f1", "auc", "latency_ms"):
        assert {(name, "train"), (name, "holdout")} <= metrics
    production = [model for model, stage, _ in versions if stage == "PRODUCTION"]
    assert len(production) == len(set(production)), "a model with two production versions"


def tour() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S)


async def test_the_readme_tour_works_on_the_demo(demo: Database) -> None:
    queries = tour()
    assert len(queries) == 12
    search = SqlSearchBackend(demo)
    await reindex(demo, search, name="embedded")

    async def run(query: str, **variables: Any) -> Any:
        context = Context(database=demo, actor="t", search=search)
        result = await schema.execute(query, variable_values=variables, context_value=context)
        assert not result.errors, result.errors
        return result.data

    page = await run(queries[0])
    assert page["model"]["versions"]["totalCount"] >= 4
    assert page["model"]["card"]["intendedUse"]
    production = await run(queries[1])
    assert production["models"]["edges"]
    assert all(e["node"]["productionVersion"]["accuracy"] for e in production["models"]["edges"])
    # The lineage query runs on the id the tour tells the reader to paste: the model page's
    # PRODUCTION version.
    [version_id] = [
        e["node"]["id"]
        for e in page["model"]["versions"]["edges"]
        if e["node"]["stage"] == "PRODUCTION"
    ]
    lineage = await run(queries[2], id=version_id)
    kinds = {e["kind"] for e in lineage["lineage"]["edges"]}
    assert {"PRODUCED", "TRAINED_ON", "USED_BY"} <= kinds
    dataset = await run(queries[3])
    trained = [m for e in dataset["dataset"]["versions"]["edges"] for m in e["node"]["models"]]
    assert trained
    found = (await run(queries[4]))["search"]
    assert found["totalCount"] >= 1
    assert all(e["node"]["model"]["name"].startswith("fraud") for e in found["edges"])
    assert {f["facet"] for f in found["facets"]} == {"framework", "stage", "tag:team"}
    mixed = (await run(queries[5]))["search"]
    kinds = {
        b["value"]: b["count"]
        for f in mixed["facets"]
        if f["facet"] == "type"
        for b in f["buckets"]
    }
    assert {"MODEL", "MODEL_VERSION", "RUN"} <= set(kinds)
    assert sum(kinds.values()) == mixed["totalCount"]
    # A promotion with an approval: settings and a gate, a request, the pending list, approval.
    # queries[6] is the subscription (it runs over a WebSocket: tests/test_subscriptions.py).
    settings = await run(queries[7])
    assert settings["updateProjectSettings"]["project"]["settings"]["requireApproval"] == [
        "PRODUCTION"
    ]
    assert settings["addQualityGate"]["qualityGate"]["rule"] == "auc on holdout >= 0.9"
    [candidate, *_] = [
        e["node"]
        for e in page["model"]["versions"]["edges"]
        if e["node"]["stage"] == "STAGING" and (e["node"]["auc"] or 0) >= 0.9
    ]
    asked = await run(queries[8], version=candidate["id"])
    request = asked["requestStageTransition"]["request"]
    assert request["status"] == "PENDING"
    pending = (await run(queries[9]))["transitionRequests"]["edges"]
    assert [e["node"]["id"] for e in pending] == [request["id"]]
    approved = (await run(queries[10], request=request["id"]))["approveStageTransition"]
    assert approved["modelVersion"]["stage"] == "PRODUCTION"
    # The webhook example: a hook and its secret, answered once.
    [webhook] = [q for q in queries if "createWebhook" in q]
    made = (await run(webhook))["createWebhook"]
    assert len(made["secret"]) >= 32 and made["webhook"]["id"]


async def test_an_error_that_ends_a_query_while_batches_read_is_answered_with_its_code(
    demo: Database,
) -> None:
    # The invalid cursor nulls the whole answer while the metric batches of the other hits are
    # still reading on the request's session: closing it under them was an INTERNAL error.
    search = SqlSearchBackend(demo)
    await reindex(demo, search, name="embedded")
    query = """{ search(input: {text: "accuracy"}) { edges { node {
      ... on Model { productionVersion { metric(name: "a", dataset: "b") } }
      ... on ModelVersion { metrics(before: "1.0.0") { totalCount } }
      ... on Run { outputs { model { productionVersion {
        metric(name: "a", dataset: "b") sourceRun { createdBy } } } } }
    } } metricStats { avg } } }"""
    context = Context(database=demo, actor="t", search=search)
    result = await schema.execute(query, context_value=context)
    assert [e.extensions["code"] for e in result.errors or ()] == ["INVALID_ARGUMENT"]
