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
import urllib.request
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


LOCAL = Path(__file__).resolve().parents[1] / "deploy" / "local"


def _jdk(minimum: int) -> Path | None:
    """A java binary of at least ``minimum``, from /usr/lib/jvm (the newest first)."""
    for home in sorted(Path("/usr/lib/jvm").glob("*"), reverse=True):
        release = home / "release"
        java = home / "bin" / "java"
        if not (release.exists() and java.exists()):
            continue
        version = next(
            (
                line.split("=")[1].strip('"')
                for line in release.read_text().splitlines()
                if line.startswith("JAVA_VERSION=")
            ),
            "0",
        )
        if int(version.split(".")[0]) >= minimum:
            return java
    return None


@dataclass
class OpenSearchServer:
    url: str
    process: subprocess.Popen[bytes] | None = None
    home: Path | None = None

    def stop(self) -> None:
        if self.process is not None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)


# (minimum Java, runner version): OpenSearch 3.x needs Java 21+, 2.19 runs on Java 17.
RUNNERS = ((21, "3.8.0.0"), (17, "2.19.1.0"))


def _runner_classpath() -> tuple[Path, str]:
    """Java and the runner's jars, fetched into deploy/local/lib-<version>/ on first use."""
    for minimum, version in RUNNERS:
        java = _jdk(minimum)
        if java is not None:
            return java, _runner_jars(java, version)
    raise ServerUnavailable("no JDK 17 or newer in /usr/lib/jvm: OpenSearch cannot run here")


def _runner_jars(java: Path, version: str) -> str:
    lib = LOCAL / f"lib-{version}"
    if not lib.exists():
        if shutil.which("mvn") is None:
            raise ServerUnavailable("Maven (mvn) is missing: it fetches the OpenSearch runner")
        fetched = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(LOCAL / "pom.xml"),
                "dependency:copy-dependencies",
                f"-Drunner.version={version}",
                f"-DoutputDirectory={lib}",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "JAVA_HOME": str(java.parents[1])},
        )
        if fetched.returncode != 0:
            shutil.rmtree(lib, ignore_errors=True)
            raise ServerUnavailable(
                f"fetching the OpenSearch runner failed: {fetched.stdout[-800:]}"
            )
    return f"{lib}/*"


def start_opensearch() -> OpenSearchServer:
    if os.environ.get("MLCATALOG_TEST_OPENSEARCH_URL"):
        return OpenSearchServer(os.environ["MLCATALOG_TEST_OPENSEARCH_URL"])
    java, classpath = _runner_classpath()
    home = Path(tempfile.mkdtemp(prefix="mlcatalog-os-"))
    # The runner scans ports base+1 … 9299 only (and moves up silently when one is taken).
    log = home / "runner.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(java),
                "-Xms512m",
                "-Xmx1g",
                "-cp",
                classpath,
                "org.codelibs.opensearch.runner.OpenSearchRunner",
                "-basePath",
                str(home),
                "-numOfNode",
                "1",
                "-baseHttpPort",
                "9200",
                "-clusterName",
                f"mlcatalog-{os.getpid()}",
            ],
            stdin=subprocess.PIPE,  # kept open: the runner lives while its stdin does
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    port = None
    deadline = time.monotonic() + 120
    while port is None and time.monotonic() < deadline and process.poll() is None:
        ports = [line for line in log.read_text().splitlines() if line.startswith("HTTP Port:")]
        if ports:
            port = int(ports[0].split(":")[1])
        else:
            time.sleep(0.2)
    server = OpenSearchServer(f"http://127.0.0.1:{port}", process, home)
    if port is None:
        output_tail = log.read_text()[-800:]
        server.stop()
        raise ServerUnavailable(f"the OpenSearch runner did not start: {output_tail}")
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"{server.url}/_cluster/health?wait_for_status=yellow"
            ) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise ServerUnavailable("OpenSearch did not become healthy within 120 s")


def opensearch_or_skip() -> OpenSearchServer:
    """Start OpenSearch, or skip (fail with CI=true) with the reason it cannot run here."""
    try:
        return start_opensearch()
    except ServerUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"OpenSearch is mandatory in CI: {error}")
        pytest.skip(str(error))


if __name__ == "__main__":
    # `make test` fetches the OpenSearch runner here, before the tests need it.
    java, classpath = _runner_classpath()
    print(f"OpenSearch runner: {classpath} on {java}")
