"""Test policies: the shipped one (policies/) with lines that give the tests' people roles."""

import shutil
import tempfile
from functools import cache
from pathlib import Path

from mlcatalog.auth.access import PolicyFiles

SHIPPED = Path(__file__).parents[1] / "policies"
# The provider's users in the HTTP tests: alice administers everything.
ADMINS = "g, user:alice, admin, *\n"


def policy_in(directory: Path, extra: str) -> PolicyFiles:
    """The shipped policy plus ``extra`` lines, written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHIPPED / "model.conf", directory / "model.conf")
    (directory / "policy.csv").write_text((SHIPPED / "policy.csv").read_text() + extra)
    return PolicyFiles.in_directory(directory)


@cache
def admins_policy() -> Path:
    """A policy directory, made once per test session, in which alice is an admin."""
    directory = Path(tempfile.mkdtemp(prefix="mlcatalog-policy-"))
    return policy_in(directory, ADMINS).policy.parent
