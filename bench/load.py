"""Closed-loop HTTP load on a server on this machine: requests/s and latency percentiles, as JSON.

A scenario file is a Python module with ``SCENARIOS``, a list of dicts, each either
  {"name": N, "requests": [REQUEST, ...]}   one HTTP call per query, the list cycled, or
  {"name": N, "run": async fn(client)}       a composite: one query is everything fn does,
                                             through client.get / client.post (calls counted);
and optionally ``async def setup(client)``, run once before the load.
REQUEST = {"method": "GET" | "POST", "path": "/x", "params": {...}, "json": {...}}; a scenario
may carry "note" and "duration" (seconds, or {"<concurrency>": seconds}).

Each (scenario, concurrency) runs a warm-up, then a measured window: C workers, each sending its
next query as soon as the last one answered. Engines: wrk (C, request lists only; used when it
is on PATH) or asyncio (httpx, every scenario). Repeats are outermost, so noise spreads over all
scenarios; the summary is the median of the repeats. Loopback targets only.

    python bench/load.py --base-url http://127.0.0.1:8000 --scenarios bench/scenarios.py \\
        --concurrency 1,16 --duration 10 --repeats 1 --label mlcatalog --out bench/out/x.json

``--header "Authorization: Bearer …"`` goes with every request (both engines); with
``--server-pid`` (the server's parent process) each window also records the CPU each of its
workers used, in cores: how evenly the connections were spread.
"""

import argparse
import asyncio
import importlib.util
import ipaddress
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

Scenario = dict[str, Any]
Setup = Callable[["Client"], Awaitable[None]]
# What main() was given: headers for every request, the server process to watch.
HEADERS: dict[str, str] = {}
SERVER_PID: int | None = None


class Client:
    """What a composite scenario talks to: JSON over HTTP, every call and byte counted."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.calls = 0
        self.bytes = 0

    async def request(self, method: str, path: str, **kwargs: Any) -> bytes:
        response = await self.http.request(method, path, **kwargs)
        self.calls += 1
        self.bytes += len(response.content)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.content

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return json.loads(await self.request("GET", path, params=params))

    async def post(self, path: str, body: Any = None) -> Any:
        return json.loads(await self.request("POST", path, json=body))


def loopback_only(base_url: str) -> None:
    host = urlsplit(base_url).hostname or ""
    for info in socket.getaddrinfo(host, None):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise SystemExit(f"refusing to load {host}: not a loopback address")


def load_scenarios(path: str) -> tuple[list[Scenario], Setup | None]:
    spec = importlib.util.spec_from_file_location("bench_scenarios", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.SCENARIOS), getattr(module, "setup", None)


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats' rounding surprises
    return ordered[int(rank) - 1]


def cpu_ticks() -> tuple[int, int]:
    """(all, idle) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    total, idle = after[0] - before[0], after[1] - before[1]
    return round((total - idle) / total * (os.cpu_count() or 1), 2) if total else None


def worker_ticks() -> dict[int, int]:
    """CPU jiffies (user + system) of each child of the server process, by pid."""
    if SERVER_PID is None:
        return {}
    ticks = {}
    try:
        with open(f"/proc/{SERVER_PID}/task/{SERVER_PID}/children") as children:
            pids = [int(p) for p in children.read().split()]
    except OSError:
        return {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"resource_tracker" in cmdline.read():
                    continue  # multiprocessing's helper, not a worker
            with open(f"/proc/{pid}/stat") as stat:
                # Fields after the command's closing parenthesis: utime, stime are 12th, 13th.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def worker_cores(before: dict[int, int], after: dict[int, int], elapsed: float) -> list[float]:
    """Each worker's CPU over the window, in cores, busiest first."""
    hertz = os.sysconf("SC_CLK_TCK")
    used = [(after[pid] - before.get(pid, 0)) / hertz / elapsed for pid in after]
    return sorted((round(u, 2) for u in used), reverse=True)


def _cycle(requests: list[dict[str, Any]]) -> Callable[[Client], Awaitable[Any]]:
    position = 0

    async def one(client: Client) -> None:
        nonlocal position
        request = requests[position % len(requests)]
        position += 1
        await client.request(
            request.get("method", "GET"),
            request["path"],
            params=request.get("params"),
            json=request.get("json"),
        )

    return one


def query_of(scenario: Scenario) -> Callable[[Client], Awaitable[Any]]:
    run: Callable[[Client], Awaitable[Any]] | None = scenario.get("run")
    return run if run is not None else _cycle(scenario["requests"])


def http_client(base: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base, limits=limits, timeout=120, headers=HEADERS)


async def drive(
    base: str, scenario: Scenario, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """The asyncio engine: ``concurrency`` closed-loop workers over one connection pool."""
    async with http_client(base, concurrency) as http:
        client = Client(http)
        query = query_of(scenario)
        latencies: list[float] = []
        errors: list[str] = []
        recording = False
        stopping = False

        async def worker() -> None:
            while not stopping:
                started = time.perf_counter()
                try:
                    await query(client)
                except Exception as error:  # counted and sampled, not fatal to the run
                    if recording:
                        errors.append(repr(error)[:300])
                    continue
                if recording:
                    latencies.append(time.perf_counter() - started)

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        calls, received = client.calls, client.bytes
        cpu, own, workers_cpu = cpu_ticks(), time.process_time(), worker_ticks()
        recording, started = True, time.perf_counter()
        await asyncio.sleep(duration)
        recording, elapsed = False, time.perf_counter() - started
        cpu_after, own_after, workers_after = cpu_ticks(), time.process_time(), worker_ticks()
        calls, received = client.calls - calls, client.bytes - received
        stopping = True
        # Queries still in flight are not counted (at most one per worker): drop them.
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    latencies.sort()
    done = len(latencies)
    return {
        "engine": "asyncio",
        "queries": done,
        "elapsed_s": round(elapsed, 3),
        "qps": round(done / elapsed, 2),
        "calls_per_query": round(calls / done, 2) if done else None,
        "kb_per_query": round(received / 1024 / done, 1) if done else None,
        **{f"p{p}_ms": round(percentile(latencies, p) * 1000, 2) for p in (50, 95, 99)},
        "max_ms": round(latencies[-1] * 1000, 2) if done else None,
        "errors": len(errors),
        "error_samples": errors[:3],
        "cpu_busy_cores": busy_cores(cpu, cpu_after),
        "worker_cores": worker_cores(workers_cpu, workers_after, elapsed),
        "client_cores": round((own_after - own) / elapsed, 2),
    }


# wrk's Lua: the requests prebuilt once per thread, sent round-robin; at the end, one JSON line.
WRK_SCRIPT = """
local specs = %s
local built, next_one = {}, 0
function init(args)
  for i, s in ipairs(specs) do built[i] = wrk.format(s[1], s[2], s[3], s[4]) end
end
function request()
  next_one = next_one %% #built + 1
  return built[next_one]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%%d,"duration_us":%%d,"bytes":%%d,"errors":%%d,' ..
    '"p50_us":%%d,"p95_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for our ASCII bodies


def wrk_script(requests: list[dict[str, Any]]) -> str:
    specs = []
    for request in requests:
        path = request["path"]
        if request.get("params"):
            path += "?" + urlencode(request["params"])
        headers, body = dict(HEADERS), "nil"
        if request.get("json") is not None:
            headers["Content-Type"] = "application/json"
            body = _lua(json.dumps(request["json"]))
        # wrk sends -H headers only with requests built without a headers table: put them here.
        headers_lua = "{" + ", ".join(f"[{_lua(k)}]={_lua(v)}" for k, v in headers.items()) + "}"
        method = _lua(request.get("method", "GET"))
        specs.append(f"{{{method}, {_lua(path)}, {headers_lua}, {body}}}")
    return WRK_SCRIPT % ("{" + ",\n".join(specs) + "}")


def _wrk(base: str, script: str, concurrency: int, seconds: int) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "60s"]
    out = subprocess.run(
        [*command, "-s", script, base], capture_output=True, text=True, timeout=seconds + 90
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def drive_wrk(
    base: str, scenario: Scenario, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """The wrk engine: one wrk thread, ``concurrency`` keep-alive connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(wrk_script(scenario["requests"]))
    try:
        if warmup > 0:
            _wrk(base, file.name, concurrency, max(1, round(warmup)))
        cpu, children = cpu_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        workers_cpu = worker_ticks()
        raw = _wrk(base, file.name, concurrency, max(1, round(duration)))
        cpu_after, after = cpu_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        workers_after = worker_ticks()
    finally:
        os.unlink(file.name)
    elapsed = raw["duration_us"] / 1e6
    done = raw["requests"]
    wrk_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return {
        "engine": "wrk",
        "queries": done,
        "elapsed_s": round(elapsed, 3),
        "qps": round(done / elapsed, 2),
        "calls_per_query": 1,
        "kb_per_query": round(raw["bytes"] / 1024 / done, 1) if done else None,
        **{f"p{p}_ms": round(raw[f"p{p}_us"] / 1000, 2) for p in (50, 95, 99)},
        "max_ms": round(raw["max_us"] / 1000, 2),
        "errors": raw["errors"],
        "error_samples": [],
        "cpu_busy_cores": busy_cores(cpu, cpu_after),
        "worker_cores": worker_cores(workers_cpu, workers_after, elapsed),
        "client_cores": round(wrk_cpu / elapsed, 2),
    }


async def probe(base: str, scenarios: list[Scenario], setup: Setup | None) -> dict[str, Any]:
    """One untimed query per scenario: it must work before it is measured."""
    async with http_client(base, 1) as http:
        client = Client(http)
        if setup is not None:
            await setup(client)
        seen = {}
        for scenario in scenarios:
            calls, started = client.calls, time.perf_counter()
            answer = await query_of(scenario)(client)
            seen[scenario["name"]] = {
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "calls": client.calls - calls,
                "answer": answer,
            }
        return seen


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (scenario, concurrency): the median of the repeats, and their qps range."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["scenario"], run["concurrency"]), []).append(run)
    rows = []
    for (name, concurrency), repeats in groups.items():
        row: dict[str, Any] = {"scenario": name, "concurrency": concurrency}
        row["engine"], row["repeats"] = repeats[0]["engine"], len(repeats)
        for key in ("qps", "p50_ms", "p95_ms", "p99_ms", "calls_per_query", "cpu_busy_cores"):
            values = [r[key] for r in repeats if r.get(key) is not None]
            row[key] = round(statistics.median(values), 2) if values else None
        row["qps_min"] = min(r["qps"] for r in repeats)
        row["qps_max"] = max(r["qps"] for r in repeats)
        row["errors"] = sum(r["errors"] for r in repeats)
        # The repeat whose rate is the median's: its spread over the workers.
        middle = sorted(repeats, key=lambda r: r["qps"])[len(repeats) // 2]
        row["worker_cores"] = middle.get("worker_cores") or []
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | c | engine | req/s | min-max | p50 ms | p95 ms | p99 ms | calls/query"
        " | errors | CPU busy (cores) | per worker (cores) |",
        "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['concurrency']} | {r['engine']} | {r['qps']:.1f}"
            f" | {r['qps_min']:.1f}-{r['qps_max']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f}"
            f" | {r['p99_ms']:.1f} | {r['calls_per_query']} | {r['errors']}"
            f" | {r['cpu_busy_cores']} | {' / '.join(map(str, r['worker_cores'])) or '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--scenarios", required=True, help="a Python module with SCENARIOS")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--engine", choices=["auto", "asyncio", "wrk"], default="auto")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", help="where to write the JSON (and a .md table beside it)")
    parser.add_argument(
        "--header", action="append", default=[], help="'Name: value' sent with every request"
    )
    parser.add_argument("--server-pid", type=int, help="record its workers' CPU per window")
    args = parser.parse_args()
    global SERVER_PID
    SERVER_PID = args.server_pid
    for header in args.header:
        name, _, value = header.partition(":")
        HEADERS[name.strip()] = value.strip()

    loopback_only(args.base_url)
    scenarios, setup = load_scenarios(args.scenarios)
    if args.only:
        wanted = args.only.split(",")
        scenarios = [s for s in scenarios if s["name"] in wanted]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    have_wrk = shutil.which("wrk") is not None
    if args.engine == "wrk" and not have_wrk:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    probed = asyncio.run(probe(args.base_url, scenarios, setup))
    print("probe:", json.dumps(probed, default=str)[:2000], file=sys.stderr)
    runs = []
    for repeat in range(args.repeats):
        for scenario in scenarios:
            for concurrency in concurrencies:
                duration = scenario.get("duration", args.duration)
                if isinstance(duration, dict):
                    duration = duration.get(str(concurrency), args.duration)
                use_wrk = have_wrk and args.engine != "asyncio" and "requests" in scenario
                if use_wrk:
                    run = drive_wrk(args.base_url, scenario, concurrency, duration, args.warmup)
                else:
                    run = asyncio.run(
                        drive(args.base_url, scenario, concurrency, duration, args.warmup)
                    )
                run.update(scenario=scenario["name"], concurrency=concurrency, repeat=repeat)
                runs.append(run)
                print(
                    f"[{args.label}] {scenario['name']:<22} c={concurrency:<3} {run['engine']:<7}"
                    f" {run['qps']:>8.1f} req/s  p50 {run['p50_ms']:>8.1f}"
                    f"  p99 {run['p99_ms']:>8.1f} ms  errors {run['errors']}",
                    file=sys.stderr,
                    flush=True,
                )
    rows = summarize(runs)
    table = markdown(rows)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "label": args.label,
            "base_url": args.base_url,
            # The headers' names only: a bearer token stays out of the file.
            "args": {**vars(args), "header": [h.partition(":")[0] for h in args.header]},
            "probe": probed,
            "summary": rows,
            "runs": runs,
            "notes": {s["name"]: s.get("note", "") for s in scenarios},
        }
        out.write_text(json.dumps(report, indent=1, default=str))
        out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
