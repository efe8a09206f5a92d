"""Benchmark mlcatalog on SQLite and PostgreSQL, side by side in one run.

For each backend: seed N versions, build the search index (the embedded backend, as `make run`
has it), start `mlcatalog serve`, check every scenario answers without
GraphQL errors, then drive it with bench/load.py at concurrency 1 and 16. Prints a Markdown
table per backend and writes JSON under bench/out/.

Access control is on: the load sends an API token with ``--role`` (viewer by default) in the
seeded project, as a pipeline or dashboard would, so the authorizer and the visible-projects
filters run as in production; ``--role none`` sends no token (the development login: one local
admin, every decision a dict lookup).

    python bench/run.py [--versions 10000] [--duration 10] [--backends sqlite,postgres]
    python bench/run.py --only a_get_model,d_acc_gt_09_top50   # some scenarios only
    python bench/run.py --url http://127.0.0.1:8000   # load an already running, seeded server
    python bench/run.py --only repeated_read,model_page --no-cache   # the response cache off
    python bench/run.py --role maintainer   # or none: the development login, no token
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scenarios import SCENARIOS  # noqa: E402
from bench.seed import PROJECT, VERSIONS_PER_MODEL, seed  # noqa: E402
from tests.realservers import free_port, start_postgres  # noqa: E402

from mlcatalog.auth import tokens  # noqa: E402
from mlcatalog.store.database import Database, Origin  # noqa: E402

HARNESS = ROOT / "bench" / "load.py"
OUT = ROOT / "bench" / "out"


async def bench_token(url: str, role: str) -> str:
    """An API token with ``role`` in the seeded project, for the load to send."""
    database = Database(url)
    try:
        created = await tokens.create(
            database,
            origin=Origin(actor="bench"),
            name=f"bench-{role}-{os.getpid()}",
            project=PROJECT,
            role=role,
            days=1,
            max_days=1,
        )
    finally:
        await database.dispose()
    return created.token


def check(base: str, args: argparse.Namespace, headers: dict[str, str]) -> None:
    """Every scenario's first request must answer with data and no GraphQL error."""
    for scenario in SCENARIOS:
        if args.only and scenario["name"] not in args.only.split(","):
            continue
        if "requests" not in scenario:
            continue  # a composite: bench/load.py's probe runs it, and it raises on errors
        request = scenario["requests"][0]  # type: ignore[index]
        body = httpx.post(
            base + request["path"], json=request["json"], headers=headers, timeout=30
        ).json()
        if body.get("errors") or not body.get("data"):
            raise SystemExit(f"{scenario['name']} fails: {body}")


UNLIMITED = {
    "MLCATALOG_LIMITS__MUTATIONS_PER_MINUTE": "0",
    "MLCATALOG_LIMITS__EXPENSIVE_READS_PER_MINUTE": "0",
}


def serve(url: str, workers: int, cache: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # One caller sends all the load: the per-caller rate limits would measure themselves.
    env = {**os.environ, "MLCATALOG_DATABASE_URL": url, **UNLIMITED}
    env["MLCATALOG_CACHE__ENABLED"] = "true" if cache else "false"
    command = [
        sys.executable,
        "-m",
        "mlcatalog",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz").status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def load(
    base: str,
    label: str,
    args: argparse.Namespace,
    headers: dict[str, str],
    server_pid: int | None = None,
) -> None:
    OUT.mkdir(exist_ok=True)
    env = {**os.environ, "BENCH_MODELS": str(args.versions // VERSIONS_PER_MODEL)}
    subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--base-url",
            base,
            "--scenarios",
            str(ROOT / "bench" / "scenarios.py"),
            "--concurrency",
            "1,16",
            "--duration",
            str(args.duration),
            "--repeats",
            str(args.repeats),
            "--label",
            label,
            "--only",
            args.only,
            "--out",
            str(OUT / f"{label}.json"),
            *(arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")),
            *(("--server-pid", str(server_pid)) if server_pid else ()),
        ],
        check=True,
        env=env,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an already running, seeded server")
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--no-cache", action="store_true", help="serve with the response cache off")
    parser.add_argument(
        "--role",
        default="viewer",
        help="the load's API token role in the project (viewer, maintainer, …); none: no token",
    )
    parser.add_argument("--token", help="with --url: the API token to send")
    args = parser.parse_args()
    if args.url:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        check(args.url, args, headers)
        load(args.url, "mlcatalog-url", args, headers)
        return
    for backend in args.backends.split(","):
        postgres = None
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='mlcatalog-bench-')}/bench.db"
        else:
            postgres = start_postgres()
            url = postgres.create_database("bench")
        rate = asyncio.run(seed(url, args.versions))
        print(f"{backend}: seeded {args.versions} versions at {rate:.0f} versions/s", flush=True)
        # The search scenarios need the index whole before the load (the embedded backend).
        env = {**os.environ, "MLCATALOG_DATABASE_URL": url}
        subprocess.run([sys.executable, "-m", "mlcatalog", "reindex"], env=env, check=True)
        headers = {}
        if args.role != "none":
            token = asyncio.run(bench_token(url, args.role))
            headers["Authorization"] = f"Bearer {token}"
        process, base = serve(url, args.workers, not args.no_cache)
        try:
            check(base, args, headers)
            label = f"mlcatalog-{backend}{'-nocache' if args.no_cache else ''}"
            load(base, label, args, headers, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=20)
            if postgres is not None:
                postgres.stop()


if __name__ == "__main__":
    main()
