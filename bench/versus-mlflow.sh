#!/usr/bin/env bash
# MLflow's registry server and mlcatalog side by side in one run: the same machine, the same load
# harness (../shared/peer-bench/load.py), the same catalog size (N models × 5 versions), SQLite.
#
#   bash bench/versus-mlflow.sh          # N=2000 DURATION=10 REPEATS=1 by default
#
# MLflow is seeded over REST by the peer harness (about 8 minutes for 2,000 models) and loaded
# with uvloop (its best setting, BASELINE.md); then bench/run.py seeds, indexes and loads
# mlcatalog (`serve --workers 2`). Results: bench/out/mlflow/ and bench/out/mlcatalog-sqlite.json.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEER="$ROOT/../shared/peer-bench"
export RES="${RES:-$ROOT/bench/out/mlflow}" N="${N:-2000}" V=5
export DURATION="${DURATION:-10}" REPEATS="${REPEATS:-1}"
(
  cd "$PEER"
  ONLY=none bash run_mlflow_baseline.sh setup sqlite
  ONLY=a_get_model,d_acc_gt_09_top50,e_facet_framework bash run_mlflow_baseline.sh sqlite_uvloop
)
"$ROOT/.venv/bin/python" "$ROOT/bench/run.py" --versions $((N * V)) --duration "$DURATION" \
  --repeats "$REPEATS" --backends sqlite
