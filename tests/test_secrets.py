"""The database password never reaches logs or the CLI's output."""

import subprocess
import sys

import pytest
from sqlalchemy import make_url

from mlcatalog.store.database import display_url

PASSWORD = "s3cr3t-pw"


def run_cli(*args: str, url: str) -> str:
    process = subprocess.run(
        [sys.executable, "-m", "mlcatalog", *args],
        env={"MLCATALOG_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    return (process.stdout + process.stderr).decode()


def test_display_url_hides_the_password() -> None:
    url = f"postgresql+asyncpg://catalog:{PASSWORD}@db.internal:5432/catalog"
    assert display_url(url) == "postgresql+asyncpg://catalog:***@db.internal:5432/catalog"


def test_display_url_of_an_unparseable_url_shows_nothing_of_it() -> None:
    assert PASSWORD not in display_url(f"not a url {PASSWORD}")
    # make_url raises ValueError, not ArgumentError, for a port that is not a number.
    url = f"postgresql+asyncpg://catalog:{PASSWORD}@db.internal:port/catalog"
    assert display_url(url) == "<a database URL that does not parse>"


def test_a_failing_migrate_does_not_print_the_password() -> None:
    output = run_cli("migrate", url=f"postgresql+asyncpg://catalog:{PASSWORD}@127.0.0.1:1/catalog")
    assert "Connect call failed" in output or "refused" in output.lower()
    assert PASSWORD not in output


@pytest.mark.postgres
def test_migrate_prints_the_database_url_without_its_password(postgres_url: str) -> None:
    # The test server trusts every login, so any password connects.
    url = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    output = run_cli("migrate", url=url)
    assert "at migration" in output
    assert ":***@" in output
    assert PASSWORD not in output
