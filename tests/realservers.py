"""Real servers for the tests, started on 127.0.0.1 in temporary directories (no Docker).

PostgreSQL comes from Debian's package (``make test`` installs it). With CI=true a server that
cannot start fails the run; elsewhere its tests skip with the reason.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


class ServerUnavailable(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    if not candidates:
        raise ServerUnavailable(
            "PostgreSQL server binaries not found; `make test` installs Debian's postgresql package"
        )
    return Path(candidates[-1]).parent


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"
    bindir: Path | None = None
    datadir: Path | None = None
    databases: list[str] = field(default_factory=list)

    def psql(self, sql: str) -> None:
        assert self.bindir is not None
        subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
        )

    def create_database(self, name: str) -> str:
        self.psql(f'DROP DATABASE IF EXISTS "{name}"')
        self.psql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{name}"

    def stop(self) -> None:
        if self.datadir is None or self.bindir is None:
            return
        _as_postgres(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"]
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)
        self.datadir = None


def _as_postgres(command: list[str]) -> subprocess.CompletedProcess[str]:
    # initdb and the server refuse to run as root: drop to the postgres user the package creates.
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True)


def start_postgres() -> PostgresServer:
    bindir = _bindir()
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise ServerUnavailable("running as root without runuser: cannot drop to the postgres user")
    root = Path(tempfile.mkdtemp(prefix="mlcatalog-pg-"))
    datadir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    init = _as_postgres(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
    )
    if init.returncode != 0:
        raise ServerUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    for _ in range(3):
        port = free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        started = _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if started.returncode == 0:
            server = PostgresServer("127.0.0.1", port, bindir=bindir, datadir=datadir)
            _wait_until_accepting(server)
            return server
    log = (root / "log").read_text()[-1000:] if (root / "log").exists() else started.stderr
    shutil.rmtree(root, ignore_errors=True)
    raise ServerUnavailable(f"PostgreSQL did not start: {log}")


def _wait_until_accepting(server: PostgresServer) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            server.psql("SELECT 1")
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise ServerUnavailable("PostgreSQL started but accepts no connections") from None
            time.sleep(0.2)


def postgres_or_skip() -> PostgresServer:
    """Start PostgreSQL, or skip (fail with CI=true) with the reason it cannot run here."""
    try:
        return start_postgres()
    except ServerUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is mandatory in CI: {error}")
        pytest.skip(str(error))
