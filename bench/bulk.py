"""Bulk registration: versions/s through one registerModelVersions of 1,000 versions (4 metrics
each) against the same versions through 1,000 createModelVersion calls, in process (no HTTP),
on SQLite or PostgreSQL (started by tests/realservers). "catalog" times the one call to
catalog/versions.register_model_versions inside the mutation (the rest is GraphQL's parsing of
the input and the commit).

    python bench/bulk.py [--batches 5] [--size 1000] [--postgres]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.realservers import start_postgres  # noqa: E402

from mlcatalog.api.context import Context  # noqa: E402
from mlcatalog.api.schema import schema  # noqa: E402
from mlcatalog.catalog import versions as catalog_versions  # noqa: E402
from mlcatalog.store import migrate  # noqa: E402
from mlcatalog.store.database import Database  # noqa: E402

BULK = """
mutation($input: RegisterModelVersionsInput!) {
  registerModelVersions(input: $input) { modelVersions { id number } }
}
"""
ONE = """
mutation($input: CreateModelVersionInput!) {
  createModelVersion(input: $input) { modelVersion { id number } }
}
"""


async def execute(database: Database, query: str, **variables: Any) -> Any:
    context = Context(database=database, actor="bench")
    result = await schema.execute(query, variables, context_value=context)
    assert not result.errors, result.errors
    return result.data


def versions(model_id: str, size: int, batch: int) -> list[dict[str, Any]]:
    return [
        {
            "model": model_id,
            "version": f"{batch}.{i}.0",
            "framework": "xgboost",
            "hyperparameters": {"depth": 6, "eta": 0.1},
            "artifact": {"uri": f"s3://bench/{batch}/{i}.onnx", "format": "onnx"},
            "tags": [{"key": "batch", "value": str(batch)}],
            "metrics": [
                {"name": name, "value": 0.5 + i / (4 * size), "dataset": "holdout"}
                for name in ("auc", "f1", "precision", "recall")
            ],
        }
        for i in range(size)
    ]


def time_catalog(spent: list[float]) -> None:
    """Wrap the catalog function the mutation calls to time it alone."""
    original = catalog_versions.register_model_versions

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    catalog_versions.register_model_versions = timed  # type: ignore[assignment]


async def main(batches: int, size: int, postgres: bool) -> None:
    server = start_postgres() if postgres else None
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{directory}/bench.db"
        if server is not None:
            url = server.create_database("bench_bulk")
        database = Database(url)
        await migrate.upgrade(database)
        await execute(
            database, 'mutation { createProject(input: {name: "bench"}) { project { id } } }'
        )
        data = await execute(
            database,
            'mutation { registerModel(input: {project: "bench", name: "m"}) { model { id } } }',
        )
        model_id = data["registerModel"]["model"]["id"]
        bulk: list[float] = []
        single: list[float] = []
        spent: list[float] = []
        time_catalog(spent)
        for batch in range(batches):
            items = versions(model_id, size, 2 * batch)
            started = time.perf_counter()
            await execute(database, BULK, input={"versions": items})
            bulk.append(size / (time.perf_counter() - started))
            items = versions(model_id, size, 2 * batch + 1)
            started = time.perf_counter()
            for item in items:
                await execute(database, ONE, input=item)
            single.append(size / (time.perf_counter() - started))
        await database.dispose()
    if server is not None:
        server.stop()
    backend = "PostgreSQL" if postgres else "SQLite"
    print(f"{batches} batches of {size} versions x 4 metrics, {backend}, median:")
    print(f"  registerModelVersions    {statistics.median(bulk):8.0f} versions/s")
    print(f"    of which catalog       {size / statistics.median(spent):8.0f} versions/s")
    print(f"  createModelVersion x{size} {statistics.median(single):7.0f} versions/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.batches, arguments.size, arguments.postgres))
