"""A million model versions on PostgreSQL with OpenSearch: seed once, measure again later.

    python bench/scale.py --versions 1000000 --data /work/bench-1m [--seed-only] [--measure-only]
        [--duration 10] [--reindex]

DATA keeps the PostgreSQL cluster (DATA/postgres) and the OpenSearch node (DATA/opensearch)
between runs, so the catalog is seeded once and measured again with newer code.

Seeding writes bench/search.py's catalog (its frameworks, teams, 12 metrics on 3 datasets per
version, training lineage to 20 datasets of which 5 are tagged pii, 5 versions per model, the
last in PRODUCTION), plus a card per model, through catalog/versions.register_model_versions in
transactions of --batch versions; stages are reached by set_stage's moves (NONE → DEVELOPMENT →
STAGING → PRODUCTION), as a pipeline would. It counts the models already there and goes on from
the next one (same draws: the plan is replayed), printing versions/s. Stopping it (SIGTERM or
SIGKILL) loses at most the transaction in flight; PostgreSQL, if left running, is taken over by
the next run. One run at a time holds DATA (a lock): stop a seeding before measuring.

Measuring (PostgreSQL and OpenSearch started on DATA): database and index sizes; `reindex`
(documents/s) when the index is missing or out of date — another mapping or settings than the
code's, fewer documents than the store, or a sample of documents unlike the store's — or with
--reindex; the five requests of bench/search.py on OpenSearch alone and at 16 concurrent
(p50/p99); then `mlcatalog serve` on both and bench/load.py's model_page and lineage scenarios
at concurrency 1 and 16. Prints Markdown and writes bench/out/scale.json.
"""

import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import run as http_bench  # noqa: E402
from bench.search import (  # noqa: E402
    FRAMEWORKS,
    METRICS,
    PER_MODEL,
    REQUESTS,
    SPLITS,
    TEAMS,
    WEIGHTS,
    load,
    make_datasets,
)
from tests.realservers import PostgresServer, start_opensearch, start_postgres  # noqa: E402

from mlcatalog.catalog import documents, models, projects, versions  # noqa: E402
from mlcatalog.catalog.versions import MAX_BULK_METRICS, MetricValue, Stage  # noqa: E402
from mlcatalog.search import opensearch  # noqa: E402
from mlcatalog.search.documents import all_keys, load_documents  # noqa: E402
from mlcatalog.search.maintenance import reindex  # noqa: E402
from mlcatalog.search.opensearch import OpenSearchBackend  # noqa: E402
from mlcatalog.store import migrate  # noqa: E402
from mlcatalog.store.database import Database, Origin  # noqa: E402
from mlcatalog.store.rows import (  # noqa: E402
    DatasetRow,
    DatasetVersionRow,
    ModelRow,
    ModelVersionRow,
    ProjectRow,
)

PROJECT = "bench"  # bench/scenarios.py's project
CHECKPOINT = "opensearch"  # the checkpoint `serve` and `mlcatalog indexer` keep for OpenSearch
ORIGIN = Origin(actor="bench")
# The words of bench/search.py's seed (local to its function there): its "text" request asks
# for two of them.
WORDS = [
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
DATASETS = 20
# The stage moves from NONE (where a bulk request creates) to each stage, as lifecycle allows.
PATHS: dict[Stage, tuple[Stage, ...]] = {
    Stage.NONE: (),
    Stage.DEVELOPMENT: (Stage.DEVELOPMENT,),
    Stage.STAGING: (Stage.DEVELOPMENT, Stage.STAGING),
    Stage.PRODUCTION: (Stage.DEVELOPMENT, Stage.STAGING, Stage.PRODUCTION),
    Stage.ARCHIVED: (Stage.ARCHIVED,),
}
# What an item of a bulk request must name (create_model_version's defaults do not apply).
UNSET: dict[str, Any] = {
    "semver": None,
    "description": None,
    "stage": Stage.NONE,
    "artifact": None,
    "framework_version": None,
    "algorithm": None,
    "hyperparameters": None,
    "code": None,
    "environment": None,
}
# One request's versions: the catalog bounds the metrics of a request, and each version has 36.
PER_REQUEST = MAX_BULK_METRICS // (len(METRICS) * len(SPLITS))
# The cluster is long-lived and large: a bigger cache, and checkpoints far apart while seeding.
POSTGRES_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
}
SEARCH_SAMPLE = 300  # documents compared with the store to decide whether the index is current
PAGE_NAMES = 2_000  # models the HTTP scenarios cycle over, spread over the whole catalog
OUT = ROOT / "bench" / "out"
console = Console()


@dataclass(frozen=True)
class PlannedVersion:
    stage: Stage
    framework: str
    quality: float
    trained_on: int  # which of the DATASETS


@dataclass(frozen=True)
class PlannedModel:
    name: str
    description: str
    tags: dict[str, str]
    versions: list[PlannedVersion]


def plan(count: int, rng: random.Random) -> Iterator[PlannedModel]:
    """bench/search.py's catalog, model by model, with the same draws in the same order."""
    for m in range(count):
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{m}"
        description = " ".join(rng.choices(WORDS, k=8))
        tags = {
            "team": rng.choices(TEAMS, weights=WEIGHTS)[0],
            "pii": rng.choice(["true", "false"]),
        }
        planned = []
        for n in range(PER_MODEL):
            quality = rng.betavariate(8, 2)
            # As bench/search.py: the last version in PRODUCTION, an earlier one drawn there is
            # a former production version, now ARCHIVED.
            stage = Stage.PRODUCTION if n == PER_MODEL - 1 else rng.choice(list(Stage))
            if stage == Stage.PRODUCTION and n < PER_MODEL - 1:
                stage = Stage.ARCHIVED
            framework = rng.choices(FRAMEWORKS, weights=WEIGHTS)[0]
            trained_on = rng.randrange(DATASETS)  # rng.choice(list of 20) draws the same
            planned.append(PlannedVersion(stage, framework, quality, trained_on))
        yield PlannedModel(name, description, tags, planned)


def _metrics(quality: float) -> list[MetricValue]:
    return [
        MetricValue(name, quality * 40 if name == "latency_ms" else quality, dataset=split)
        for name in METRICS
        for split in SPLITS
    ]


async def _project_and_data(database: Database) -> tuple[int, list[int]]:
    """The bench project and its dataset versions, created on the first run."""
    async with database.read() as session:
        project_id = await session.scalar(select(ProjectRow.id).where(ProjectRow.name == PROJECT))
        if project_id is not None:
            data = await session.scalars(
                select(DatasetVersionRow.id)
                .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
                .where(DatasetRow.project_id == project_id)
                .order_by(DatasetRow.id)
            )
            return project_id, list(data)
    async with database.unit_of_work(ORIGIN) as uow:
        project = await projects.create_project(uow, name=PROJECT, description="1M versions")
        return project.id, await make_datasets(uow, project.id, DATASETS)


async def _write(
    database: Database, project_id: int, data: list[int], batch: list[PlannedModel]
) -> None:
    """One transaction: the models, their versions in bulk requests, their stage moves, cards."""
    async with database.unit_of_work(ORIGIN) as uow:
        items: list[dict[str, Any]] = []
        stages: list[Stage] = []
        for planned in batch:
            model = await models.register_model(
                uow,
                project_id=project_id,
                name=planned.name,
                description=planned.description,
                task="classification",
                tags=planned.tags,
            )
            await documents.upsert_document(
                uow,
                subject_type="Model",
                subject_id=model.id,
                content={
                    "intended_use": f"Scores cases for team {planned.tags['team']}",
                    "markdown": "# Card\n\nTrained weekly; evaluated on the holdout split.",
                },
            )
            for version in planned.versions:
                items.append(
                    {
                        **UNSET,
                        "model_id": model.id,
                        "framework": version.framework,
                        "metrics": _metrics(version.quality),
                        "training_dataset_version_ids": [data[version.trained_on]],
                    }
                )
                stages.append(version.stage)
        created: list[ModelVersionRow] = []
        for start in range(0, len(items), PER_REQUEST):
            created += await versions.register_model_versions(
                uow, versions=items[start : start + PER_REQUEST]
            )
        for row, stage in zip(created, stages, strict=True):
            for step in PATHS[stage]:
                await versions.set_stage(uow, version_id=row.id, stage=step)


async def seed(database: Database, total: int, batch_versions: int) -> dict[str, Any]:
    """Go on from the models already there up to ``total`` versions; returns the rate."""
    project_id, data = await _project_and_data(database)
    async with database.read() as session:
        done = int(
            await session.scalar(
                select(func.count()).select_from(ModelRow).where(ModelRow.project_id == project_id)
            )
            or 0
        )
    count = total // PER_MODEL
    per_batch = max(1, batch_versions // PER_MODEL)
    planned = plan(count, random.Random(42))
    for _ in range(min(done, count)):  # replay the draws of the models written before
        next(planned)
    console.print(f"{done * PER_MODEL} versions there, seeding to {count * PER_MODEL}")
    started, written = time.perf_counter(), 0
    columns = (
        TextColumn("seeding"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} versions"),
        TextColumn("{task.fields[rate]} versions/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("seed", total=count * PER_MODEL, completed=done * PER_MODEL, rate="-")
        while batch := list(islice(planned, per_batch)):
            await _write(database, project_id, data, batch)
            written += len(batch) * PER_MODEL
            rate = written / (time.perf_counter() - started)
            bar.update(task, completed=done * PER_MODEL + written, rate=f"{rate:,.0f}")
            if not console.is_terminal and written % (10 * per_batch * PER_MODEL) == 0:
                # Logged to a file (nohup): a line now and then instead of the live bar.
                console.print(
                    f"{time.strftime('%H:%M:%S')} {done * PER_MODEL + written:,} versions,"
                    f" {rate:,.0f} versions/s",
                    highlight=False,
                )
    elapsed = time.perf_counter() - started
    rate = written / elapsed if written else None
    console.print(f"seeded {written:,} versions in {elapsed:,.0f} s ({rate or 0:,.0f}/s)")
    return {"seeded_now": written, "seed_seconds": round(elapsed), "seed_versions_per_s": rate}


def built_with(stamp: Path) -> str | None:
    """The fingerprint the index in DATA was built with (written after each reindex)."""
    return json.loads(stamp.read_text())["mapping"] if stamp.exists() else None


def record_build(stamp: Path) -> None:
    stamp.write_text(json.dumps({"mapping": mapping_fingerprint()}))


def mapping_fingerprint() -> str:
    """What the code builds an index with: another fingerprint means the index is out of date."""
    shape = json.dumps([opensearch.MAPPING, opensearch.SETTINGS], sort_keys=True)
    return hashlib.sha256(shape.encode()).hexdigest()


async def index_current(database: Database, backend: OpenSearchBackend, stamp: Path) -> str | None:
    """Why the index needs a rebuild, or None when it is current."""
    if built_with(stamp) != mapping_fingerprint():
        return "no index built with this mapping and settings"
    async with database.read() as session:
        keys = await all_keys(session)
    indexed = 0
    for alias in opensearch.ALIASES.values():
        if await backend.client.indices.exists_alias(name=alias):
            indexed += (await backend.client.count(index=alias))["count"]
    if indexed < len(keys):
        return f"{indexed} documents indexed, the store has {len(keys)}"
    sample = random.Random(7).sample(keys, min(SEARCH_SAMPLE, len(keys)))
    async with database.read() as session:
        expected = await load_documents(session, sample)
    stored = await backend.stored_documents(sample)
    stale = [key for key in sample if stored.get(key) != expected.get(key)]
    if stale:
        return f"{len(stale)} of {len(sample)} sampled documents differ from the store's"
    return None


async def sizes(database: Database) -> dict[str, Any]:
    async with database.read() as session:
        database_bytes = await session.scalar(text("SELECT pg_database_size(current_database())"))
        tables = (
            await session.execute(
                text(
                    "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid),"
                    " c.reltuples::bigint FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
                    " ORDER BY 2 DESC"
                )
            )
        ).all()
        model_versions = await session.scalar(select(func.count()).select_from(ModelVersionRow))
    return {
        "versions": model_versions,
        "database_bytes": database_bytes,
        "index_bytes": sum(t[2] for t in tables),
        "tables": {t[0]: {"bytes": t[1], "index_bytes": t[2], "rows": t[3]} for t in tables[:8]},
    }


async def measure_search(
    database: Database, url: str, stamp: Path, duration: float, force: bool
) -> dict[str, Any]:
    backend = OpenSearchBackend(url, timeout=30)
    results: dict[str, Any] = {}
    try:
        why = "--reindex" if force else await index_current(database, backend, stamp)
        if why is not None:
            console.print(f"reindexing: {why}")
            started = time.perf_counter()
            written = await reindex(database, backend, name=CHECKPOINT)
            await backend.refresh()
            results["reindex_docs"] = written
            results["reindex_docs_per_s"] = written / (time.perf_counter() - started)
            record_build(stamp)
            console.print(
                f"reindexed {written:,} documents at {results['reindex_docs_per_s']:,.0f}/s"
            )
        stats = await backend.client.indices.stats(index=opensearch.INDEX_PATTERN, metric="store")
        results["index_bytes"] = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        for label, request in REQUESTS.items():
            await backend.search(request)  # warm
            results[label] = {
                f"c{c}": await load(backend, request, duration, concurrency=c) for c in (1, 16)
            }
            console.print("opensearch", label, json.dumps(results[label]), highlight=False)
    finally:
        await backend.close()
    return results


async def page_names(database: Database) -> list[str]:
    """PAGE_NAMES model names spread evenly over the catalog (cold pages too, at 1M)."""
    async with database.read() as session:
        total = int(await session.scalar(select(func.count()).select_from(ModelRow)) or 0)
        step = max(1, total // PAGE_NAMES)
        numbered = (
            select(ModelRow.name, func.row_number().over(order_by=ModelRow.id).label("n"))
            .join(ProjectRow, ProjectRow.id == ModelRow.project_id)
            .where(ProjectRow.name == PROJECT)
            .subquery()
        )
        return list(await session.scalars(select(numbered.c.name).where(numbered.c.n % step == 0)))


def measure_http(
    url: str, opensearch_url: str, names: Path, token: str, args: argparse.Namespace
) -> Any:
    """bench/run.py's serve and load: model_page and lineage at concurrency 1 and 16."""
    # The index is whole (reindexed above): no indexer beside the load; the pages from the file.
    os.environ.update(
        MLCATALOG_SEARCH__OPENSEARCH_URL=opensearch_url,
        MLCATALOG_SEARCH__SERVE_INDEXER="false",
        BENCH_MODEL_NAMES=str(names),
    )
    options = argparse.Namespace(
        versions=args.versions, duration=args.duration, repeats=1, only="model_page,lineage"
    )
    # As an auditor of the project (access control on: the lineage question reads the history),
    # with the cache off: the database is measured.
    process, base = http_bench.serve(url, args.workers, False)
    try:
        # Not run.check: its scenarios were imported before the names were set. The names come
        # from the database, and the lineage scenario raises on a model it does not find.
        headers = {"Authorization": f"Bearer {token}"}
        http_bench.load(base, "scale-postgres", options, headers, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)
    return json.loads((OUT / "scale-postgres.json").read_text())["summary"]


def exclusive(data: Path) -> Any:
    """A lock on DATA for the whole run: two seeders would write the same models, a measure
    beside a seeder would measure both, and each stops the servers when it ends."""
    lock = (data / "seed.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another bench/scale.py runs on {data} (see {data}/seed.log)") from None
    return lock


async def run(args: argparse.Namespace, postgres: PostgresServer) -> dict[str, Any]:
    url = postgres.ensure_database("catalog")
    database = Database(url)
    results: dict[str, Any] = {"target_versions": args.versions}
    try:
        await migrate.upgrade(database)
        if not args.measure_only:
            results.update(await seed(database, args.versions, args.batch))
            async with database.write_engine.connect() as connection:
                # Fresh statistics and visibility maps, as autovacuum leaves a settled catalog.
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM (ANALYZE)"))
        if args.seed_only:
            return results
        results["postgres"] = await sizes(database)
        console.print("sizes", json.dumps(results["postgres"]), highlight=False)
        (args.data / "opensearch").mkdir(exist_ok=True)
        server = start_opensearch(args.data / "opensearch")
        try:
            results["opensearch"] = await measure_search(
                database, server.url, args.data / "index.json", args.duration, args.reindex
            )
            names = args.data / "model-names.txt"
            names.write_text("\n".join(await page_names(database)) + "\n")
            token = await http_bench.bench_token(url, "auditor")
            results["http"] = measure_http(url, server.url, names, token, args)
        finally:
            server.stop(keep_data=True)
    finally:
        await database.dispose()
    return results


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def report(results: dict[str, Any]) -> None:
    pg = results["postgres"]
    print(
        f"\n{pg['versions']:,} versions; PostgreSQL {_mib(pg['database_bytes'])}"
        f" ({_mib(pg['index_bytes'])} of it indexes);"
        f" OpenSearch {_mib(results['opensearch']['index_bytes'])}"
    )
    if "reindex_docs_per_s" in results["opensearch"]:
        print(f"reindex: {results['opensearch']['reindex_docs_per_s']:,.0f} documents/s")
    print("\n| request | c=1 p50 ms | c=1 p99 ms | c=16 req/s | c=16 p50 ms | c=16 p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in REQUESTS:
        one, many = results["opensearch"][label]["c1"], results["opensearch"][label]["c16"]
        print(
            f"| opensearch {label} | {one['p50_ms']:.1f} | {one['p99_ms']:.1f} | {many['rps']:.0f}"
            f" | {many['p50_ms']:.1f} | {many['p99_ms']:.1f} |"
        )
    for row in results["http"]:
        print(
            f"| HTTP {row['scenario']} c={row['concurrency']} | | | {row['qps']:.0f}"
            f" | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, required=True, help="kept between runs")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument("--reindex", action="store_true", help="rebuild the index in any case")
    parser.add_argument("--duration", type=float, default=10, help="seconds per window")
    parser.add_argument("--batch", type=int, default=1000, help="versions per transaction")
    parser.add_argument("--workers", type=int, default=2, help="`serve` workers")
    args = parser.parse_args()
    if args.seed_only and args.measure_only:
        parser.error("--seed-only and --measure-only exclude each other")
    args.data.mkdir(parents=True, exist_ok=True)
    lock = exclusive(args.data)
    postgres = start_postgres(args.data / "postgres", POSTGRES_SETTINGS)
    try:
        results = asyncio.run(run(args, postgres))
    finally:
        postgres.stop()
        lock.close()
    OUT.mkdir(exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps(results, indent=1, default=str))
    if not args.seed_only:
        report(results)


if __name__ == "__main__":
    main()
