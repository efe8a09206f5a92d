"""What the authorizer costs: a list of 100 models with a dozen fields each, with it off and on.

Seeds a fresh SQLite file (bench/seed.py), then runs the same query in process, interleaved
round by round so that the machine's drift hits every case alike:

- off: every field's resolver unwrapped (no authorizer at all);
- admin: the authorizer with every right (the development user, in-process callers);
- viewer: a viewer of every project, whose sensitive fields come back null with FORBIDDEN;
- mixed: a maintainer of the project and a viewer elsewhere, whose decisions depend on each
  entity's project.

    python bench/authorization.py [--models 100] [--rounds 300]
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.seed import seed  # noqa: E402

from mlcatalog.api.authorize import unwrap_fields  # noqa: E402
from mlcatalog.api.context import Context  # noqa: E402
from mlcatalog.api.schema import schema  # noqa: E402
from mlcatalog.auth.access import UNRESTRICTED, Policy, PolicyFiles, Rights, access_of  # noqa: E402
from mlcatalog.auth.principal import Method, Principal  # noqa: E402
from mlcatalog.store.database import Database  # noqa: E402

QUERY = """
query($first: Int!) { models(first: $first) { edges { node {
  name description owner task archivedAt createdAt createdBy updatedAt updatedBy
  project { name } tags { key value } latestVersion { number stage hyperparameters }
} } } }
"""
PEOPLE = "g, user:alice, maintainer, bench\ng, user:alice, viewer, *\ng, user:bob, viewer, *\n"


def policy(directory: Path) -> Policy:
    shutil.copy(ROOT / "policies" / "model.conf", directory / "model.conf")
    text = (ROOT / "policies" / "policy.csv").read_text() + PEOPLE
    (directory / "policy.csv").write_text(text)
    return Policy(PolicyFiles.in_directory(directory))


def set_authorizer(on: bool, wrapped: dict[str, Callable[..., object]]) -> None:
    for coordinate, field in unwrap_fields(schema._schema):
        if on:
            field.resolve = wrapped[coordinate]
        else:
            field.resolve = getattr(wrapped[coordinate], "__wrapped__", wrapped[coordinate])


def count_statements(database: Database, counts: list[int]) -> None:
    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def count(*_: object) -> None:
        counts[0] += 1


async def run(database: Database, access: Rights, models: int) -> float:
    context = Context(database=database, actor="bench", access=access)
    started = time.perf_counter()
    result = await schema.execute(QUERY, {"first": models}, context_value=context)
    elapsed = time.perf_counter() - started
    edges = (result.data or {}).get("models", {}).get("edges", [])
    assert len(edges) == models, result.errors
    return elapsed


async def main(models: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{directory}/bench.db"
        await seed(url, models * 5)
        database = Database(url)
        rules = policy(Path(directory))
        cases: dict[str, tuple[bool, Rights]] = {
            "off": (False, UNRESTRICTED),
            "admin": (True, UNRESTRICTED),
            "viewer": (True, access_of(rules, Principal("bob", Method.BEARER))),
            "mixed": (True, access_of(rules, Principal("alice", Method.BEARER))),
        }
        wrapped = {c: f.resolve for c, f in unwrap_fields(schema._schema)}
        times: dict[str, list[float]] = {name: [] for name in cases}
        statements: dict[str, int] = {}
        counter = [0]
        count_statements(database, counter)
        for round_ in range(rounds + 10):
            for name, (on, access) in cases.items():
                set_authorizer(on, wrapped)
                counter[0] = 0
                elapsed = await run(database, access, models)
                statements[name] = counter[0]
                if round_ >= 10:  # the first rounds warm the caches
                    times[name].append(elapsed)
        set_authorizer(True, wrapped)
        await database.dispose()
    off = statistics.median(times["off"])
    print(f"{models} models x 14 fields, {rounds} rounds, median per query:")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:7} {median * 1000:7.2f} ms  {median / off:4.2f}x off"
            f"  {statements[name]} SQL statements"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.models, arguments.rounds))
