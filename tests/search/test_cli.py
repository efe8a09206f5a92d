"""The search commands as an operator runs them: search-check's exit code, reindex."""

import os
import subprocess
import sys
from pathlib import Path


def mlcatalog(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLCATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    env.pop("MLCATALOG_SEARCH__OPENSEARCH_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "mlcatalog", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_search_check_fails_on_drift_until_reindex(tmp_path: Path) -> None:
    database = tmp_path / "catalog.db"
    assert mlcatalog(database, "demo").returncode == 0
    drift = mlcatalog(database, "search-check")
    assert drift.returncode == 1
    assert "missing:" in drift.stdout
    rebuilt = mlcatalog(database, "reindex")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "reindexed" in rebuilt.stdout
    clean = mlcatalog(database, "search-check")
    assert clean.returncode == 0, clean.stdout
    assert "no drift" in clean.stdout
