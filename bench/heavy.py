"""The heaviest query the cost limit admits, and /healthz on the same worker while it runs.

Fills a fresh SQLite file (bench/seed.py: models of 5 versions with 4 metrics, tags and a card,
so every page the query asks for is full; or the demo catalog with --demo), serves it with one
worker, checks that the query fits under the cost limit (and that one more model does not), then
times it while a second client polls /healthz, and prints both.

    python bench/heavy.py [--seed-versions 5000] [--models 500] [--versions 5] [--repeats 5]
    python bench/heavy.py --demo 10 --models 120 --versions 22
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.seed import seed  # noqa: E402
from tests.realservers import free_port  # noqa: E402

HEAVY = """
query($models: Int!, $versions: Int!) { models(first: $models) { totalCount edges { node {
  name description owner task aliases { name }
  card { intendedUse markdown }
  versions(first: $versions) { totalCount edges { node {
    number version stage framework algorithm hyperparameters createdAt
    aliases
    metrics(first: 5) { edges { node { name value dataset } } }
    sourceRun { name status }
  } } }
} } } }
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def measure(base: str, models: int, versions: int, repeats: int) -> None:
    variables = {"models": models, "versions": versions}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        over = {"models": models + 1, "versions": versions}
        refused = (await client.post("/graphql", json={"query": HEAVY, "variables": over})).json()
        first = (
            await client.post("/graphql", json={"query": HEAVY, "variables": variables})
        ).json()
        if "errors" in first:
            print("refused:", first["errors"][0]["message"])
            return
        print("one more model:", refused.get("errors", [{}])[0].get("message", "ran"))
        idle = []
        for _ in range(200):
            started = time.perf_counter()
            await client.get("/healthz")
            idle.append(time.perf_counter() - started)
        durations: list[float] = []
        during: list[float] = []
        done = asyncio.Event()

        async def poll() -> None:
            async with httpx.AsyncClient(base_url=base) as health:
                while not done.is_set():
                    started = time.perf_counter()
                    await health.get("/healthz")
                    during.append(time.perf_counter() - started)
                    await asyncio.sleep(0.005)

        poller = asyncio.create_task(poll())
        size = 0
        for _ in range(repeats):
            started = time.perf_counter()
            answer = await client.post("/graphql", json={"query": HEAVY, "variables": variables})
            durations.append(time.perf_counter() - started)
            size = len(answer.content)
        done.set()
        await poller
    print(
        f"heavy query ({models} models x {versions} versions): "
        f"{statistics.median(durations) * 1000:.0f} ms median, "
        f"{max(durations) * 1000:.0f} ms worst, {size / 1e6:.1f} MB"
    )
    print(
        f"/healthz idle p50 {percentile(idle, 0.5):.1f} ms, p99 {percentile(idle, 0.99):.1f} ms;"
        f" during p50 {percentile(during, 0.5):.1f} ms, p99 {percentile(during, 0.99):.1f} ms"
        f" (n={len(during)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed-versions", type=int, default=5000)
    parser.add_argument("--demo", type=int, default=0, help="the demo catalog at this scale")
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    mlcatalog = str(Path(sys.executable).with_name("mlcatalog"))
    with tempfile.TemporaryDirectory() as directory:
        env = {"MLCATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{directory}/catalog.db"}
        # The query is repeated by one caller: the expensive-read rate limit would refuse it.
        environment = {**os.environ, **env, "MLCATALOG_LIMITS__EXPENSIVE_READS_PER_MINUTE": "0"}
        if args.demo:
            demo = [mlcatalog, "demo", "--scale", str(args.demo)]
            subprocess.run(demo, env=environment, check=True)
        else:
            subprocess.run([mlcatalog, "migrate"], env=environment, check=True)
            asyncio.run(seed(env["MLCATALOG_DATABASE_URL"], args.seed_versions))
        port = free_port()
        server = subprocess.Popen(
            [mlcatalog, "serve", "--port", str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            asyncio.run(measure(base, args.models, args.versions, args.repeats))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
