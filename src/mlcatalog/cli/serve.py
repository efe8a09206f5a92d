"""``mlcatalog serve``: the GraphQL server."""

import asyncio
import logging
import os
import shutil
import socket
import tempfile
from typing import Any

import typer
import uvicorn
from uvicorn.supervisors import Multiprocess

from mlcatalog.auth.access import Policy, PolicyError, PolicyFiles
from mlcatalog.auth.authenticate import UnsafeProduction, refuse_unsafe_production
from mlcatalog.settings import ServerSettings, Settings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, display_url


async def _migrated(settings: Settings) -> bool:
    database = Database(settings.database_url)
    try:
        return await migrate.is_up_to_date(database)
    finally:
        await database.dispose()


APP = "mlcatalog.app:app_from_env"
REUSE_PORT = hasattr(socket, "SO_REUSEPORT")
log = logging.getLogger("uvicorn.error")


class ReusePortSocket(socket.socket):
    """A listening address each worker binds for itself, with SO_REUSEPORT.

    uvicorn's supervisor hands every worker the socket it bound: all workers then accept from
    one queue, and whichever wakes first takes the connection, so a few keep-alive clients can
    all land on one worker while the other idles. With a socket of its own per worker, the
    kernel hashes each new connection to one of them: an even spread. The supervisor pickles
    the sockets it passes to each worker it starts (restarts too), and this one unpickles as a
    fresh socket on the same address; the parent's stays bound, never listening, which holds
    the port (and resolves port 0) without taking connections.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (reuse_port_socket, (self.family, self.getsockname()))


def reuse_port_socket(family: int, address: tuple[Any, ...]) -> ReusePortSocket:
    sock = ReusePortSocket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


def _serve_on_own_sockets(config: uvicorn.Config) -> None:
    """uvicorn.run's multi-worker path, but each worker listening on a socket of its own."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        # SO_REUSEPORT would also share the port with a server already on it (another serve of
        # the same account): a plain bind first refuses a port in use, as uvicorn's does.
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((config.host, config.port))
            address = probe.getsockname()
        sock = reuse_port_socket(family, address)
    except OSError as error:
        typer.echo(f"cannot listen on {config.host}:{config.port}: {error}", err=True)
        raise typer.Exit(1) from None
    host, port = sock.getsockname()[:2]
    log.info("Uvicorn running on http://%s:%d, one socket per worker (SO_REUSEPORT)", host, port)
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


# The options read the same variables as Settings (MLCATALOG_SERVER__*) and share its defaults,
# so `--help` shows both.
DEFAULTS = ServerSettings()


def serve(
    host: str = typer.Option(
        DEFAULTS.host, envvar="MLCATALOG_SERVER__HOST", help="Interface to listen on."
    ),
    port: int = typer.Option(DEFAULTS.port, envvar="MLCATALOG_SERVER__PORT", help="Port."),
    workers: int = typer.Option(
        DEFAULTS.workers,
        min=1,
        envvar="MLCATALOG_SERVER__WORKERS",
        help="Worker processes; one per core serves the most.",
    ),
    reload: bool = typer.Option(False, help="Restart when the code changes (development)."),
) -> None:
    """Serve the GraphQL API on /graphql (GraphiQL in a browser), /healthz and /readyz."""
    settings = Settings()
    try:
        refuse_unsafe_production(settings)
    except UnsafeProduction as error:
        typer.echo(f"refusing to start: {error}", err=True)
        raise typer.Exit(1) from None
    try:
        Policy(PolicyFiles.in_directory(settings.auth.policy_dir))
    except PolicyError as error:
        typer.echo(f"refusing to start: {error} (MLCATALOG_AUTH__POLICY_DIR)", err=True)
        raise typer.Exit(1) from None
    if not asyncio.run(_migrated(settings)):
        typer.echo(
            f"{display_url(settings.database_url)} is not migrated: run `mlcatalog migrate` first.",
            err=True,
        )
        raise typer.Exit(1)
    processes = None if reload else workers
    shared_metrics = None
    if (processes or 1) > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker counts into files here and /metrics adds up every worker's
        # (prometheus_client's multiprocess mode); the workers inherit the variable.
        shared_metrics = tempfile.mkdtemp(prefix="mlcatalog-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared_metrics
    options: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=processes,
        reload=reload,
        # Our own JSON line replaces uvicorn's (settings.server.access_log).
        access_log=False,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        # A bigger frame is refused by the protocol (close 1009) before it is read whole.
        ws_max_size=settings.subscriptions.max_message_bytes,
        # The server pings: a client gone without a close frees its subscriptions.
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
    )
    try:
        if (processes or 1) > 1 and REUSE_PORT:
            _serve_on_own_sockets(uvicorn.Config(APP, **options))
        else:
            uvicorn.run(APP, **options)
    finally:
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)
