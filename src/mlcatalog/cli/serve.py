"""``mlcatalog serve``: the GraphQL server."""

import asyncio
import os
import shutil
import tempfile

import typer
import uvicorn

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
    try:
        uvicorn.run(
            "mlcatalog.app:app_from_env",
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
    finally:
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)
