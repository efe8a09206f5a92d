"""`mlcatalog policy check` explains a decision of the shipped policy."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcatalog.cli.app import app

SHIPPED = Path(__file__).parents[2] / "policies"


@pytest.fixture(autouse=True)
def shipped_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCATALOG_AUTH__POLICY_DIR", str(SHIPPED))


def test_an_allowed_decision_names_its_line() -> None:
    result = CliRunner().invoke(app, ["policy", "check", "maintainer", "Stage.PRODUCTION", "write"])
    assert result.exit_code == 0, result.output
    assert "ALLOWED" in result.output and "p, maintainer, *, Stage.*, write" in result.output


def test_a_denied_sensitive_field_says_why() -> None:
    result = CliRunner().invoke(
        app, ["policy", "check", "viewer", "Artifact.uri", "read", "--project", "fraud"]
    )
    assert result.exit_code == 1
    assert "DENIED" in result.output and "sensitive" in result.output


def test_a_missing_policy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLCATALOG_AUTH__POLICY_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["policy", "check", "viewer", "Model.name", "read"])
    assert result.exit_code == 2
    assert "cannot read the policy" in result.output
