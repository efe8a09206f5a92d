"""``mlcatalog serve``: the GraphQL server."""

import asyncio

import typer
import uvicorn

from mlcatalog.settings import Settings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, display_url


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
            f"{display_url(settings.database_url)} is not migrated: run `mlcatalog migrate` first.",
            err=True,
        )
        raise typer.Exit(1)
    uvicorn.run(
        "mlcatalog.app:app_from_env",
        factory=True,
        host=host or settings.server.host,
        port=port or settings.server.port,
        workers=None if reload else (workers or settings.server.workers),
        reload=reload,
        access_log=settings.server.access_log,
        loop="uvloop",
        http="httptools",
    )
