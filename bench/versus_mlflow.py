"""MLflow's registry server and mlcatalog side by side in one run: the same machine, the same load
driver (bench/load.py), the same catalog (bench/seed.py's plan: N models x 5 versions), SQLite.

1. MLflow (installed on first use into bench/out/venv-mlflow: `pip install mlflow uvloop`) serves
   a fresh SQLite file with its defaults (uvicorn, 4 workers) and uvloop, its best setting (the
   plain asyncio loop stalls ~40 ms per keep-alive request); bench/mlflow_seed.py writes the
   catalog over REST; bench/load.py drives a_get_model, d_acc_gt_09_top50 and e_facet_framework
   (bench/mlflow_scenarios.py), then the server stops.
2. bench/run.py seeds the same catalog into mlcatalog through its rules (on each of
   `--backends`, SQLite by default), indexes it (the embedded backend), serves it with
   `serve --workers 2` and drives the same scenarios (bench/scenarios.py) with access control on:
   an API token with `--role` (viewer) in the project; `--role none` for the development login.
3. A Markdown table of both and their ratio: printed, and written to bench/out/versus-mlflow.md.

    python bench/versus_mlflow.py                          # 2,000 models, 10 s windows
    python bench/versus_mlflow.py --models 50 --duration 3 # a smoke run
    python bench/versus_mlflow.py --backends sqlite,postgres
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mlflow_seed import seed  # noqa: E402
from bench.seed import VERSIONS_PER_MODEL  # noqa: E402
from tests.realservers import free_port  # noqa: E402

OUT = ROOT / "bench" / "out"
VENV = OUT / "venv-mlflow"
# register_version last: it adds versions the reads would otherwise see.
SCENARIOS = ["a_get_model", "d_acc_gt_09_top50", "e_facet_framework", "register_version"]
# Questions MLflow has no one answer for, measured on mlcatalog's side in the same run (the
# auditor's lineage question is bench/scale.py's: history is for auditors, who register nothing).
OURS_ONLY = ["model_page", "list_50_production", "repeated_read"]
# Reads the response cache can answer: measured again with it off (the database's own speed).
UNCACHED = ["a_get_model", "model_page", "list_50_production"]


def mlflow_venv() -> Path:
    """MLflow's own virtualenv (never a dependency of mlcatalog or its tests)."""
    mlflow = VENV / "bin" / "mlflow"
    if not mlflow.exists():
        print(f"installing MLflow into {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "mlflow", "uvloop"], check=True)
    return mlflow


def start_mlflow(mlflow: Path, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        str(mlflow),
        "server",
        "--backend-store-uri",
        f"sqlite:///{home}/mlflow.db",
        "--artifacts-destination",
        str(home / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--uvicorn-opts",
        "--loop uvloop",
    ]
    log = (home / "server.log").open("wb")
    # A session of its own: stopping it signals its workers too, and nothing else.
    process = subprocess.Popen(
        command, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                time.sleep(5)  # one worker answers; give the other three their start-up too
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop(process)
    raise SystemExit(f"MLflow did not start; see {home / 'server.log'}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def load(base: str, scenarios: str, label: str, args: argparse.Namespace) -> None:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            *("--base-url", base, "--scenarios", scenarios, "--only", ",".join(SCENARIOS)),
            *("--concurrency", "1,16", "--duration", str(args.duration)),
            *("--repeats", str(args.repeats), "--label", label),
            *("--out", str(OUT / f"{label}.json")),
        ],
        check=True,
        env={**os.environ, "BENCH_MODELS": str(args.models)},
    )


def measure_mlflow(args: argparse.Namespace) -> None:
    mlflow = mlflow_venv()
    home = Path(tempfile.mkdtemp(prefix="mlflow-bench-"))
    process, base = start_mlflow(mlflow, home)
    try:
        seeded = asyncio.run(seed(base, args.models))
        print(f"MLflow seeded: {json.dumps(seeded)}", flush=True)
        (OUT / "mlflow-seed.json").write_text(json.dumps(seeded, indent=1))
        load(base, str(ROOT / "bench" / "mlflow_scenarios.py"), "mlflow", args)
    finally:
        stop(process)
        shutil.rmtree(home, ignore_errors=True)


def measure_mlcatalog(args: argparse.Namespace, scenarios: list[str], *flags: str) -> None:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            *("--versions", str(args.models * VERSIONS_PER_MODEL)),
            *("--duration", str(args.duration), "--repeats", str(args.repeats)),
            *("--backends", args.backends, "--only", ",".join(scenarios)),
            *("--role", args.role, *flags),
        ],
        check=True,
    )


def summary(label: str) -> dict[tuple[str, int], dict[str, Any]]:
    report = json.loads((OUT / f"{label}.json").read_text())
    return {(row["scenario"], row["concurrency"]): row for row in report["summary"]}


def side_by_side(backends: list[str]) -> str:
    """MLflow (SQLite) beside mlcatalog on each backend, cache on and off, with the ratios."""
    mlflow = summary("mlflow")
    runs = [(b, "", summary(f"mlcatalog-{b}")) for b in backends]
    runs += [(b, " (cache off)", summary(f"mlcatalog-{b}-nocache")) for b in backends]
    lines = [
        "| scenario | c | MLflow req/s (p99 ms) | mlcatalog | req/s (p99 ms) | ratio |",
        "|---|---:|---:|---|---:|---:|",
    ]
    order = SCENARIOS + OURS_ONLY
    keys = {key for _, _, rows in runs for key in rows} | set(mlflow)
    for key in sorted(keys, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k)):
        theirs = mlflow.get(key)
        for backend, variant, rows in runs:
            mine = rows.get(key)
            if mine is None:
                continue
            ratio = f"{mine['qps'] / theirs['qps']:.1f}x" if theirs and theirs["qps"] else "—"
            shown = f"{theirs['qps']:.1f} ({theirs['p99_ms']:,.0f})" if theirs else "—"
            lines.append(
                f"| {key[0]} | {key[1]} | {shown} | {backend}{variant}"
                f" | {mine['qps']:.1f} ({mine['p99_ms']:,.0f}) | {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", default="sqlite", help="mlcatalog's: sqlite,postgres")
    # A contributor: it reads what a viewer reads and may register versions (register_version).
    parser.add_argument(
        "--role",
        default="contributor",
        help="mlcatalog's load token role (none: the development login, no access control)",
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    measure_mlflow(args)
    # register_version last (bench/scenarios.py's order): its versions would change the reads.
    measure_mlcatalog(args, SCENARIOS + OURS_ONLY)
    measure_mlcatalog(args, UNCACHED, "--no-cache")
    table = side_by_side(args.backends.split(","))
    (OUT / "versus-mlflow.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
