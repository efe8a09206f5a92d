"""Search benchmark: a generated catalog, then each backend side by side in one run.

    python bench/search.py [--versions 20000] [--duration 10] [--backends embedded,opensearch]
        [--databases sqlite,postgres] [--explain]

Seeds a realistic catalog (skewed framework and tag distributions, 12 metrics on 3 datasets per
version, training lineage to datasets of which some are tagged pii; deterministic seed) through
the catalog's bulk registration (catalog/versions.register_model_versions, 250 versions per
transaction; stages, which a batch cannot create, set afterwards in SQL before the index is
built) into SQLite and/or PostgreSQL, indexes it into each backend with `reindex`
(documents/s), runs each request type alone (p50) and at concurrency 16 against the backend in
process (p50/p99, requests/s), and measures the lag from a commit to its being searchable with
the indexer running (p50/p99). --explain prints the query plan of every SQL statement each
embedded search sends. Prints a Markdown table and writes bench/out/search.json.
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.realservers import start_opensearch, start_postgres  # noqa: E402

from mlcatalog.catalog import datasets, models, projects, versions  # noqa: E402
from mlcatalog.catalog.versions import MetricValue, Stage  # noqa: E402
from mlcatalog.search.backend import SearchBackend  # noqa: E402
from mlcatalog.search.indexer import Indexer, run_forever  # noqa: E402
from mlcatalog.search.maintenance import reindex  # noqa: E402
from mlcatalog.search.opensearch import OpenSearchBackend  # noqa: E402
from mlcatalog.search.request import (  # noqa: E402
    EntityType,
    MetricRange,
    MetricStatsRequest,
    SearchRequest,
    Sort,
    SortBy,
    TrainedOn,
)
from mlcatalog.search.sql import SqlSearchBackend  # noqa: E402
from mlcatalog.store import migrate  # noqa: E402
from mlcatalog.store.database import Database, Origin, UnitOfWork  # noqa: E402
from mlcatalog.store.rows import ModelVersionRow  # noqa: E402

FRAMEWORKS = ["pytorch", "xgboost", "sklearn", "lightgbm", "tensorflow", "jax", "catboost"]
WEIGHTS = [40, 25, 15, 10, 6, 3, 1]  # skewed, as real catalogs are
TEAMS = ["risk", "growth", "search", "vision", "ads", "ops", "research"]
METRICS = [
    "accuracy",
    "auc",
    "f1",
    "precision",
    "recall",
    "latency_ms",
    "logloss",
    "mae",
    "rmse",
    "ndcg",
    "coverage",
    "calibration",
]
SPLITS = ["train", "validation", "holdout"]
PER_MODEL = 5
BENCH = Origin(actor="bench")
# The arguments of a bulk item the generator leaves empty (the API's to_catalog gives them all).
UNSET: dict[str, Any] = {
    **dict.fromkeys(("semver", "description", "artifact", "framework_version", "algorithm")),
    **dict.fromkeys(("hyperparameters", "code", "environment")),
    "stage": Stage.NONE,
    "tags": {},
}
MODELS_PER_COMMIT = 50  # 250 versions, 9,000 metrics: within one bulk request's limits

REQUESTS = {
    "text": SearchRequest(text="fraud detector"),
    "two_facets": SearchRequest(
        filters=(("framework", ("pytorch", "xgboost")), ("tag:team", ("risk",))),
        facets=("framework", "stage", "tag:team"),
    ),
    "metric_range_sorted": SearchRequest(
        metrics=(MetricRange("auc", "holdout", gte=0.9),),
        sort=Sort(SortBy.METRIC, True, "auc", "holdout"),
    ),
    "histogram": SearchRequest(metric_stats=(MetricStatsRequest("auc", "holdout", buckets=20),)),
    "combined_lineage": SearchRequest(
        text="model",
        filters=(("stage", ("PRODUCTION",)),),
        metrics=(MetricRange("latency_ms", "holdout", lt=20),),
        trained_on=TrainedOn(tag=("pii", "true")),
        facets=("framework",),
        metric_stats=(MetricStatsRequest("auc", "holdout"),),
        sort=Sort(SortBy.METRIC, True, "auc", "holdout"),
    ),
    # bench/scenarios.py's d and e (the catalog questions measured against MLflow), in process.
    "d_top50_by_metric": SearchRequest(
        entity_types=(EntityType.MODEL_VERSION,),
        metrics=(MetricRange("accuracy", "holdout", gt=0.9),),
        sort=Sort(SortBy.METRIC, True, "accuracy", "holdout"),
        first=50,
    ),
    "e_framework_counts": SearchRequest(
        entity_types=(EntityType.MODEL_VERSION,), facets=("framework",), first=0
    ),
}


async def make_datasets(uow: UnitOfWork, project_id: int, count: int) -> list[int]:
    """``count`` datasets of one version each, every fourth tagged pii; their version ids."""
    data_versions = []
    for i in range(count):
        dataset = await datasets.create_dataset(
            uow,
            project_id=project_id,
            name=f"data-{i}",
            tags={"pii": "true" if i % 4 == 0 else "false"},
        )
        version = await datasets.create_dataset_version(
            uow, dataset_id=dataset.id, label="v1", uri=f"s3://d/{i}"
        )
        data_versions.append(version.id)
    return data_versions


async def seed(database: Database, total: int, rng: random.Random) -> float:
    started = time.perf_counter()
    async with database.unit_of_work(BENCH) as uow:
        project = await projects.create_project(uow, name="search-bench", description=None)
        data_versions = await make_datasets(uow, project.id, 20)
    words = [
        "fraud",
        "detector",
        "churn",
        "ranker",
        "vision",
        "forecast",
        "spam",
        "classifier",
        "model",
    ]
    count = total // PER_MODEL
    # Several models per transaction: the figure is about search, not about commit latency.
    for first in range(0, count, MODELS_PER_COMMIT):
        async with database.unit_of_work(BENCH) as uow:
            items: list[dict[str, Any]] = []
            stages: dict[Stage, list[int]] = {}  # the stage of each item, by index
            for m in range(first, min(first + MODELS_PER_COMMIT, count)):
                model = await models.register_model(
                    uow,
                    project_id=project.id,
                    name=f"{rng.choice(words)}-{rng.choice(words)}-{m}",
                    description=" ".join(rng.choices(words, k=8)),
                    task="classification",
                    tags={
                        "team": rng.choices(TEAMS, weights=WEIGHTS)[0],
                        "pii": rng.choice(["true", "false"]),
                    },
                )
                for n in range(PER_MODEL):
                    quality = rng.betavariate(8, 2)
                    # One version per model in PRODUCTION: an earlier draw of PRODUCTION is a
                    # former production version, now ARCHIVED. Same draws as the seeding through
                    # create_model_version did, so the catalog is the one measured before.
                    stage = Stage.PRODUCTION if n == PER_MODEL - 1 else rng.choice(list(Stage))
                    if stage == Stage.PRODUCTION and n < PER_MODEL - 1:
                        stage = Stage.ARCHIVED
                    stages.setdefault(stage, []).append(len(items))
                    items.append(
                        {
                            **UNSET,
                            "model_id": model.id,
                            "framework": rng.choices(FRAMEWORKS, weights=WEIGHTS)[0],
                            "metrics": [
                                MetricValue(
                                    name,
                                    quality * 40 if name == "latency_ms" else quality,
                                    dataset=split,
                                )
                                for name in METRICS
                                for split in SPLITS
                            ],
                            "training_dataset_version_ids": [rng.choice(data_versions)],
                        }
                    )
            created = await versions.register_model_versions(uow, versions=items)
            # A batch creates in NONE (stage rules run one version at a time): the stages are
            # set in SQL, before the index is built from the rows.
            for stage, indexes in stages.items():
                if stage != Stage.NONE:
                    await uow.session.execute(
                        update(ModelVersionRow)
                        .where(ModelVersionRow.id.in_([created[i].id for i in indexes]))
                        .values(stage=stage.value)
                    )
    return total / (time.perf_counter() - started)


async def load(
    backend: SearchBackend, request: SearchRequest, duration: float, concurrency: int = 16
) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await backend.search(request)
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    return {
        "rps": len(latencies) / duration,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


async def explain(database: Database, backend: SearchBackend, request: SearchRequest) -> list[str]:
    """The plan of every statement one search sends, as the database runs it."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("SET", "EXPLAIN")):
            sent.append((statement, parameters))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await backend.search(request)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    postgres = database.dialect == "postgresql"
    plans = []
    async with database.engine.connect() as connection:
        for statement, parameters in sent:
            prefix = "EXPLAIN ANALYZE " if postgres else "EXPLAIN QUERY PLAN "
            driver = await connection.get_raw_connection()
            if postgres:  # asyncpg: $1 parameters, given positionally
                rows = await driver.driver_connection.fetch(prefix + statement, *parameters)
                plan = "\n".join(r[0] for r in rows)
            else:
                cursor = await driver.driver_connection.execute(prefix + statement, parameters)
                plan = "\n".join(str(r[-1]) for r in await cursor.fetchall())
            plans.append(f"{' '.join(statement.split())[:300]}\n{plan}")
    return plans


async def lag(
    database: Database, backend: SearchBackend, name: str, samples: int
) -> dict[str, float]:
    """Commit → searchable, with the indexer running as `serve` runs it."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_forever(Indexer(database, backend, name=name), poll_seconds=0.1, stop=stop)
    )
    delays = []
    try:
        async with database.read() as session:
            version_id = await session.scalar(select(ModelVersionRow.id).limit(1))
        assert version_id is not None
        for i in range(samples):
            marker = 1000.0 + i
            async with database.unit_of_work(BENCH) as uow:
                await versions.log_metrics(
                    uow, version_id=version_id, metrics=[MetricValue("lag_probe", marker)]
                )
            committed = time.perf_counter()
            probe = SearchRequest(metrics=(MetricRange("lag_probe", gte=marker, lte=marker),))
            while (await backend.search(probe)).total == 0:
                await backend.refresh()
                await asyncio.sleep(0.02)
            delays.append((time.perf_counter() - committed) * 1000)
    finally:
        stop.set()
        await task
    delays.sort()
    return {
        "lag_p50_ms": statistics.median(delays),
        "lag_p99_ms": delays[int(len(delays) * 0.99) - 1],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--backends", default="embedded,opensearch")
    parser.add_argument(
        "--databases", default="sqlite", help="sqlite,postgres: the catalog's database(s)"
    )
    parser.add_argument("--explain", action="store_true", help="print each statement's plan")
    parser.add_argument(
        "--reuse-index",
        action="store_true",
        help="skip the embedded backend's reindex (a reused database an earlier run indexed)",
    )
    parser.add_argument(
        "--database", help="a SQLite file to seed, or to reuse when an earlier run seeded it"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"versions": args.versions}
    labels = []
    for kind in args.databases.split(","):
        postgres = None
        if kind == "postgres":
            postgres = start_postgres()
            url = postgres.create_database("search_bench")
        else:
            path = args.database or f"{tempfile.mkdtemp(prefix='mlcatalog-search-')}/bench.db"
            url = f"sqlite+aiosqlite:///{path}"
        try:
            labels += await run(url, kind, args, results)
        finally:
            if postgres is not None:
                postgres.stop()
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=1))
    print(
        "\n| backend | request | first ms | alone p50 ms | req/s (c=16) | p50 ms | p99 ms |"
        "\n|---|---|---:|---:|---:|---:|---:|"
    )
    for label in labels:
        for name in REQUESTS:
            r = results[label][name]
            print(
                f"| {label} | {name} | {r['cold_ms']:.1f} | {r['alone_p50_ms']:.1f} |"
                f" {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            )
    for label in labels:
        r = results[label]
        lag_ms = f"lag p50 {r['lag_p50_ms']:.0f} ms, p99 {r['lag_p99_ms']:.0f} ms"
        print(f"{label}: reindex {r['reindex_docs_per_s'] or 0:.0f} docs/s; {lag_ms}")


async def run(url: str, kind: str, args: Any, results: dict[str, Any]) -> list[str]:
    """Seed (or reuse) the catalog at ``url`` and measure each backend on it."""
    database = Database(url)
    await migrate.upgrade(database)
    async with database.read() as session:
        seeded = await session.scalar(select(func.count()).select_from(ModelVersionRow))
    if seeded:
        print(f"reusing {seeded} versions in {url}", flush=True)
        args.versions = seeded
    else:
        rate = await seed(database, args.versions, random.Random(42))
        results[f"seed_rate_{kind}"] = rate
        print(f"seeded {args.versions} versions into {kind} at {rate:.0f}/s", flush=True)
    if kind == "postgres":
        async with database.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
    labels = []
    for backend_kind in args.backends.split(","):
        label = f"{backend_kind} ({kind})" if backend_kind == "embedded" else backend_kind
        server = None
        if backend_kind == "opensearch":
            server = start_opensearch()
            backend: SearchBackend = OpenSearchBackend(server.url, timeout=30)
        else:
            backend = SqlSearchBackend(database)
        try:
            started = time.perf_counter()
            row: dict[str, Any] = {"reindex_docs_per_s": None}
            if not (args.reuse_index and backend_kind == "embedded"):
                written = await reindex(database, backend, name=backend_kind)
                await backend.refresh()
                row["reindex_docs_per_s"] = written / (time.perf_counter() - started)
            started = time.perf_counter()
            await backend.search(SearchRequest(first=0))
            row["first_search_s"] = time.perf_counter() - started  # the view's first load
            if isinstance(backend, SqlSearchBackend):
                row["view_bytes"] = backend.view.memory()
                row["view_bytes_per_document"] = row["view_bytes"] / max(1, backend.view.size)
            print(label, {k: v for k, v in row.items()}, flush=True)
            for name, request in REQUESTS.items():
                started = time.perf_counter()
                await backend.search(request)  # the first time: nothing of it in memory yet
                cold_ms = (time.perf_counter() - started) * 1000
                alone = await load(backend, request, min(args.duration, 3), concurrency=1)
                row[name] = await load(backend, request, args.duration)
                row[name]["alone_p50_ms"] = alone["p50_ms"]
                row[name]["cold_ms"] = cold_ms
                print(label, name, row[name], flush=True)
                if args.explain and backend_kind == "embedded":
                    for plan in await explain(database, backend, request):
                        print(f"  {plan}", flush=True)
            row.update(await lag(database, backend, backend_kind, samples=50))
            results[label] = row
            labels.append(label)
            print(
                label,
                {k: v for k, v in row.items() if k.startswith(("reindex", "lag"))},
                flush=True,
            )
        finally:
            await backend.close()
            if server is not None:
                server.stop()
    await database.dispose()
    return labels


if __name__ == "__main__":
    asyncio.run(main())
