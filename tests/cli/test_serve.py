"""`mlcatalog serve` refuses to start in production without an identity provider."""

import subprocess
import sys
from pathlib import Path


def test_serve_refuses_production_without_an_issuer(tmp_path: Path) -> None:
    served = subprocess.run(
        [sys.executable, "-m", "mlcatalog", "serve", "--port", "1"],
        env={
            "MLCATALOG_ENVIRONMENT": "production",
            "MLCATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/catalog.db",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 1
    assert "refusing to start" in served.stderr
    assert "MLCATALOG_AUTH__ISSUER" in served.stderr
