"""catalogEvents under load: N idle-then-busy subscribers on one uvicorn process, a writer at a
fixed rate; commit-to-receipt latency and the server's memory per idle subscriber.

    python bench/subscriptions.py [--subscribers 1000] [--rate 50] [--seconds 20]

One `mlcatalog serve` (one worker, SQLite in a temporary directory) is started; the subscribers
(graphql-transport-ws, the `websockets` package) and the writer run in this process, so on a
2-core machine the load generator shares the cores with the server. Latency is the time from
the journal entry's `at` (stamped in the writing transaction, just before its commit) to the
moment a subscriber has parsed the event; each event is received by every subscriber.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from mlcatalog.store import migrate
from mlcatalog.store.database import Database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.realservers import free_port  # noqa: E402

EVENTS = "subscription { catalogEvents { sequence at } }"
PROJECT = 'mutation { createProject(input: {name: "b"}) { project { id } } }'
REGISTER = """mutation($n: String!) {
  registerModel(input: {project: "b", name: $n}) { model { id } }
}"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def subscriber(url: str, latencies: list[float]) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    await ws.recv()
    await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": EVENTS}}))

    async def receive() -> None:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "next":
                at = message["payload"]["data"]["catalogEvents"]["at"]
                latencies.append(now - datetime.fromisoformat(at).timestamp())

    asyncio.get_running_loop().create_task(receive())
    return ws


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", help="write the server's cProfile statistics to this file")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="mlcatalog-bench-subs-"))
    db_url = f"sqlite+aiosqlite:///{directory / 'catalog.db'}"
    database = Database(db_url)
    await migrate.upgrade(database)
    await database.dispose()
    port = free_port()
    env = {
        "MLCATALOG_DATABASE_URL": db_url,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Each bench subscriber is one principal (the development user).
        "MLCATALOG_SUBSCRIPTIONS__CONNECTIONS_PER_PRINCIPAL": str(args.subscribers + 10),
    }
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    server = subprocess.Popen(  # noqa: ASYNC220  # started once, before the measurement
        [sys.executable, *profile, "-m", "mlcatalog", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            await http.post("/graphql", json={"query": PROJECT})
            await asyncio.sleep(1)
            before = rss_kib(server.pid)
            latencies: list[float] = []
            sockets = []
            for start in range(0, args.subscribers, 50):
                batch = range(start, min(start + 50, args.subscribers))
                sockets += await asyncio.gather(
                    *(subscriber(f"ws://127.0.0.1:{port}/graphql", latencies) for _ in batch)
                )
            await asyncio.sleep(3)
            idle = rss_kib(server.pid)
            per_subscriber = (idle - before) * 1024 / args.subscribers

            interval = 1 / args.rate
            sent = 0
            began = time.monotonic()
            while time.monotonic() - began < args.seconds:
                target = began + sent * interval
                await asyncio.sleep(max(0.0, target - time.monotonic()))
                await http.post(
                    "/graphql", json={"query": REGISTER, "variables": {"n": f"m{sent}"}}
                )
                sent += 1
            elapsed = time.monotonic() - began
            await asyncio.sleep(5)  # let the last events arrive
            expected = sent * args.subscribers
            received = len(latencies)
            ordered = sorted(latencies)

            def pct(p: float) -> float:
                return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

            result = {
                "subscribers": args.subscribers,
                "events": sent,
                "rate": round(sent / elapsed, 1),
                "deliveries_expected": expected,
                "deliveries_received": received,
                "p50_ms": round(pct(0.50), 1),
                "p99_ms": round(pct(0.99), 1),
                "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
                "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else None,
                "server_rss_before_kib": before,
                "server_rss_idle_kib": idle,
                "bytes_per_idle_subscriber": round(per_subscriber),
            }
            print(json.dumps(result, indent=2))
            for ws in sockets:
                await ws.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
