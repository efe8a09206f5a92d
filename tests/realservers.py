"""Real servers for the tests, started on 127.0.0.1 in temporary directories (no Docker).

PostgreSQL comes from Debian's package (``make test`` installs it), or is the running server that
``MLCATALOG_TEST_POSTGRES_URL`` names. With CI=true a server that cannot start fails the run;
elsewhere its tests skip with the reason.
"""

import asyncio
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import asyncpg
import pytest


class ServerUnavailable(Exception):
    """Why a real server cannot run here, in one line: the reason a test skips (or fails in CI)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A PostgreSQL server: started by us when ``root`` is set, else an external one left alone."""

    host: str
    port: int
    user: str = "postgres"
    password: str | None = None
    admin_database: str = "postgres"
    bindir: Path | None = None
    root: Path | None = None
    keep_data: bool = False  # a persistent data directory (start_postgres(root=...))

    def url(self, database: str) -> str:
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql+asyncpg://{auth}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database (a leftover of the same name is dropped); its SQLAlchemy URL."""
        self.drop_database(name)
        self.execute(f"CREATE DATABASE {_identifier(name)}")
        return self.url(name)

    def ensure_database(self, name: str) -> str:
        """The database, created when missing (its data kept otherwise); its SQLAlchemy URL."""
        with ThreadPoolExecutor(1) as pool:
            exists = pool.submit(asyncio.run, self._exists(name)).result()
        if not exists:
            self.execute(f"CREATE DATABASE {_identifier(name)}")
        return self.url(name)

    async def _admin(self) -> "asyncpg.Connection":
        """A connection to the maintenance database."""
        return await asyncpg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.admin_database,
            timeout=10,
        )

    async def _exists(self, name: str) -> bool:
        connection = await self._admin()
        try:
            return bool(
                await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            )
        finally:
            await connection.close()

    def drop_database(self, name: str) -> None:
        # FORCE: an engine a test forgot to dispose must not block the cleanup.
        self.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")

    def execute(self, sql: str) -> None:
        """Run one statement on the maintenance database; safe inside a running event loop."""
        # asyncio.run cannot nest in the caller's loop (pytest-asyncio's); a fresh thread has none.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._execute(sql)).result()

    async def _execute(self, sql: str) -> None:
        connection = await self._admin()
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def stop(self) -> None:
        if self.root is None or self.bindir is None:
            return  # an external server is not ours to stop
        _pg_ctl(self.bindir, self.root, "-m", "fast", "-w", "-t", "300", "stop")
        if not self.keep_data:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def start_postgres(
    root: Path | None = None, settings: dict[str, str] | None = None
) -> PostgresServer:
    """The server MLCATALOG_TEST_POSTGRES_URL names, else a new one in a temporary directory.

    With ``root``, the server keeps its data there (created on first use, started again later;
    stop() leaves it), and ``settings`` are extra server settings (``-c name=value``).
    """
    external = os.environ.get("MLCATALOG_TEST_POSTGRES_URL")
    if root is not None:
        server = _start_persistent(_bindir(), root, settings or {})
    else:
        server = _external(external) if external else _start_local()
    try:
        _wait_until_accepting(server)
    except ServerUnavailable:
        server.stop()
        raise
    return server


def _external(url: str) -> PostgresServer:
    parts = urlsplit(url)
    return PostgresServer(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=None if parts.password is None else unquote(parts.password),
        admin_database=parts.path.lstrip("/") or "postgres",
    )


def _bindir() -> Path:
    # Debian installs each major version side by side and puts none of them on PATH.
    debian = sorted(
        Path("/usr/lib/postgresql").glob("[0-9]*/bin/initdb"),
        key=lambda initdb: tuple(map(int, initdb.parts[-3].split("."))),
    )
    if debian:
        return debian[-1].parent
    if shutil.which("pg_config"):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        # pg_config also ships with the client library alone, without the server.
        if bindir and (Path(bindir) / "initdb").exists():
            return Path(bindir)
    raise ServerUnavailable(
        "PostgreSQL server binaries not found; `make test` installs Debian's postgresql package"
    )


def _start_local() -> PostgresServer:
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="mlcatalog-pg-"))
    try:
        return _init_and_start(bindir, root)
    except BaseException:
        _pg_ctl(bindir, root, "-m", "immediate", "stop")  # pg_ctl -w may time out on a live server
        shutil.rmtree(root, ignore_errors=True)
        raise


def _start_persistent(bindir: Path, root: Path, settings: dict[str, str]) -> PostgresServer:
    root.mkdir(parents=True, exist_ok=True)
    if _pg_ctl(bindir, root, "status").returncode == 0:
        # postmaster.pid's fourth line is the port: a server left running (its starter killed).
        # Left running by a starter that died: taken over, stopped by our stop(). The caller
        # makes sure no one else uses the directory at the same time.
        port = int((root / "data" / "postmaster.pid").read_text().splitlines()[3])
        return PostgresServer("127.0.0.1", port, bindir=bindir, root=root, keep_data=True)
    if not (root / "data").exists():
        _initdb(bindir, root)
    server = _start(bindir, root, settings)
    server.keep_data = True
    return server


def _init_and_start(bindir: Path, root: Path) -> PostgresServer:
    _initdb(bindir, root)
    return _start(bindir, root, {})


def _initdb(bindir: Path, root: Path) -> None:
    if os.geteuid() == 0:
        try:
            shutil.chown(root, "postgres")
        except LookupError:
            raise ServerUnavailable("running as root, and there is no postgres user") from None
    # No fsync, here and in the server: the data lives as long as the test run (or the bench's
    # data directory, which a crash of the machine, not of the server, may lose).
    initdb: list[str | Path] = [bindir / "initdb", "-D", root / "data", "--auth=trust", "-N"]
    init = _as_postgres([*initdb, "-U", "postgres", "--encoding=UTF8", "--locale=C"])
    if init.returncode != 0:
        raise ServerUnavailable(f"initdb failed: {_tail(init.stderr)}")


def _start(bindir: Path, root: Path, settings: dict[str, str]) -> PostgresServer:
    extra = "".join(f" -c {name}={value}" for name, value in settings.items())
    for _ in range(3):
        port = free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" + extra
        )
        started = _pg_ctl(
            # A persistent server left by a crash replays its WAL first: give it time.
            bindir,
            root,
            "-o",
            options,
            "-l",
            root / "log",
            "-w",
            "-t",
            "300",
            "start",
        )
        if started.returncode == 0:
            return PostgresServer("127.0.0.1", port, bindir=bindir, root=root)
        log = (root / "log").read_text() if (root / "log").exists() else started.stderr
        # Another process can take the free port before the server binds it: try another.
        if "already in use" not in log:
            break
    raise ServerUnavailable(f"PostgreSQL did not start: {_tail(log)}")


def _pg_ctl(bindir: Path, root: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return _as_postgres([bindir / "pg_ctl", "-D", root / "data", *args])


def _as_postgres(command: list[str | Path]) -> subprocess.CompletedProcess[str]:
    argv = [str(part) for part in command]
    # initdb and the server refuse to run as root: drop to the postgres user the package creates.
    if os.geteuid() == 0:
        if shutil.which("runuser"):
            argv = ["runuser", "-u", "postgres", "--", *argv]
        else:
            argv = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)]
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )


def _tail(output: str, lines: int = 5) -> str:
    return " | ".join([line for line in output.strip().splitlines() if line.strip()][-lines:])


def _wait_until_accepting(server: PostgresServer, seconds: float = 30) -> None:
    # pg_ctl -w trusts postmaster.pid; a real login also proves the TCP listener and the auth.
    deadline = time.monotonic() + seconds
    while True:
        try:
            server.execute("SELECT 1")
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if time.monotonic() > deadline:
                raise ServerUnavailable(
                    f"PostgreSQL on {server.host}:{server.port} accepts no connections: {error}"
                ) from None
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

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the node; with ``keep_data`` its directory stays, to start it again."""
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
        if self.home is not None and not keep_data:
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
    _fetch_jars(
        java, LOCAL / "pom.xml", lib, f"-Drunner.version={version}", "the OpenSearch runner"
    )
    return f"{lib}/*"


def _fetch_jars(java: Path, pom: Path, lib: Path, version: str, what: str) -> None:
    """Copy a pom's dependencies from Maven Central into ``lib`` once (a failed try leaves none)."""
    if lib.exists():
        return
    if shutil.which("mvn") is None:
        raise ServerUnavailable(f"Maven (mvn) is missing: it fetches {what}")
    fetched = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            version,
            f"-DoutputDirectory={lib}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "JAVA_HOME": str(java.parents[1])},
    )
    if fetched.returncode != 0:
        shutil.rmtree(lib, ignore_errors=True)
        raise ServerUnavailable(f"fetching {what} failed: {fetched.stdout[-800:]}")


def start_opensearch(home: Path | None = None) -> OpenSearchServer:
    """Start a node (in ``home``, to restart one stopped with keep_data)."""
    if os.environ.get("MLCATALOG_TEST_OPENSEARCH_URL") and home is None:
        return OpenSearchServer(os.environ["MLCATALOG_TEST_OPENSEARCH_URL"])
    java, classpath = _runner_classpath()
    home = home or Path(tempfile.mkdtemp(prefix="mlcatalog-os-"))
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


OIDC_VERSION = "6.0.2"  # avoid 6.0.0 and 6.0.1


@dataclass
class OidcServer:
    """NAV's mock-oauth2-server: every path segment is an issuer (``{url}/{issuer_id}``)."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    home: Path | None = None

    def issuer(self, issuer_id: str) -> str:
        return f"{self.url}/{issuer_id}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None


def _oidc_classpath() -> tuple[Path, str]:
    """Java 17+ and the server's jars, fetched into deploy/local/lib-oidc-<version>/ once."""
    java = _jdk(17)
    if java is None:
        raise ServerUnavailable("no JDK 17 or newer in /usr/lib/jvm: the OIDC server cannot run")
    lib = LOCAL / f"lib-oidc-{OIDC_VERSION}"
    pom = LOCAL / "oidc" / "pom.xml"
    _fetch_jars(java, pom, lib, f"-Dserver.version={OIDC_VERSION}", "the OIDC server")
    return java, f"{lib}/*"


def start_oidc(token_callbacks: list[dict[str, object]]) -> OidcServer:
    """The server MLCATALOG_TEST_OIDC_URL names, else one on a free port.

    ``token_callbacks`` is the server's JSON_CONFIG ``tokenCallbacks``: per issuer id, the claims
    its token endpoint puts in tokens (an external server must be configured the same way).
    ``{url}`` in a claim's string value becomes the server's URL.
    """
    external = os.environ.get("MLCATALOG_TEST_OIDC_URL")
    if external:
        return OidcServer(external.rstrip("/"))
    java, classpath = _oidc_classpath()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "interactiveLogin": False,
        "httpServer": "NettyWrapper",
        "tokenCallbacks": json.loads(json.dumps(token_callbacks).replace("{url}", url)),
    }
    home = Path(tempfile.mkdtemp(prefix="mlcatalog-oidc-"))
    log = home / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(java),
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-cp",
                classpath,
                "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt",
            ],
            env={
                **os.environ,
                "SERVER_HOSTNAME": "127.0.0.1",
                "SERVER_PORT": str(port),
                "JSON_CONFIG": json.dumps(config),
            },
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = OidcServer(url, process, home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/isalive", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    output_tail = log.read_text()[-800:]
    server.stop()
    raise ServerUnavailable(f"the OIDC server did not start: {output_tail}")


def oidc_or_skip(token_callbacks: list[dict[str, object]]) -> OidcServer:
    """Start the OIDC server, or skip (fail with CI=true) with the reason it cannot run here."""
    try:
        return start_oidc(token_callbacks)
    except ServerUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the OIDC server is mandatory in CI: {error}")
        pytest.skip(str(error))


if __name__ == "__main__":
    # `make test` fetches the OpenSearch runner and the OIDC server here, before the tests.
    java, classpath = _runner_classpath()
    print(f"OpenSearch runner: {classpath} on {java}")
    java, classpath = _oidc_classpath()
    print(f"OIDC server: {classpath} on {java}")
