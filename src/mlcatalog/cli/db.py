"""``mlcatalog migrate`` and ``mlcatalog export-schema``."""

import asyncio
from pathlib import Path

import typer

from mlcatalog.settings import Settings
from mlcatalog.store import migrate as migrations
from mlcatalog.store.database import Database, display_url


async def _migrate(url: str) -> str | None:
    database = Database(url)
    try:
        await migrations.upgrade(database)
        return await migrations.current_revision(database)
    finally:
        await database.dispose()


def migrate() -> None:
    """Apply the database migrations (safe to run again: it does only what is missing)."""
    settings = Settings()
    revision = asyncio.run(_migrate(settings.database_url))
    typer.echo(f"{display_url(settings.database_url)}: at migration {revision}")


def export_schema(
    output: Path = typer.Option(
        Path("schema.graphql"), help="Where to write the SDL; - for stdout."
    ),
) -> None:
    """Write the GraphQL schema (SDL) that the code defines."""
    from mlcatalog.api.schema import schema

    sdl = schema.as_str() + "\n"
    if str(output) == "-":
        typer.echo(sdl, nl=False)
    else:
        output.write_text(sdl)
        typer.echo(f"wrote {output}")
