"""``mlcatalog serve``: the GraphQL server."""

import asyncio
import os
import shutil
import tempfile

import typer
import uvicorn

from mlcatalog.settings import Settings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database


async def _migrated(settings: Settings) -> bool:
    database = Database(settings.database_url)
    try:
        return await migrate.is_up_to_date(database)
    finally:
        await database.dispose()


def serve(
    host: str = typer.Option(None, help="Interface to listen on [default: 127.0.0.1]."),
    port: int = typer.Option(None, help="Port [default: 8000]."),
    workers: int = typer.Option(None, help="Worker processes; one per core serves the most."),
    reload: bool = typer.Option(False, help="Restart when the code changes (development)."),
) -> None:
    """Serve the GraphQL API on /graphql (GraphiQL in a browser), /healthz and /readyz."""
    settings = Settings()
    if not asyncio.run(_migrated(settings)):
        typer.echo(
            f"{settings.database_url} is not migrated: run `mlcatalog migrate` first.",
            err=True,
        )
        raise typer.Exit(1)
    processes = None if reload else (workers or settings.server.workers)
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
            host=host or settings.server.host,
            port=port or settings.server.port,
            workers=processes,
            reload=reload,
            # Our own JSON line replaces uvicorn's (settings.server.access_log).
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
    finally:
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)
