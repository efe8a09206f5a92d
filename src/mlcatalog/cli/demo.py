"""``mlcatalog demo``: fill the database with the demo catalog."""

import asyncio

import typer
from rich.progress import Progress
from sqlalchemy import func, select

from mlcatalog.cli.origin import cli_origin
from mlcatalog.demo import DemoSummary, load_demo
from mlcatalog.settings import Settings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database
from mlcatalog.store.rows import ModelRow


async def _demo(url: str, seed: int, scale: int, if_empty: bool) -> DemoSummary | None:
    database = Database(url)
    try:
        await migrate.upgrade(database)
        if if_empty:
            async with database.read() as session:
                if await session.scalar(select(func.count()).select_from(ModelRow)):
                    return None
        with Progress() as bar:
            task = bar.add_task("loading the demo catalog", total=None)
            return await load_demo(
                database,
                origin=cli_origin(),
                seed=seed,
                scale=scale,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        await database.dispose()


def demo(
    seed: int = typer.Option(7, help="The same seed gives the same catalog."),
    scale: int = typer.Option(1, min=1, help="Multiplies the number of models per project."),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing when models exist."),
) -> None:
    """Fill the database with a realistic demo catalog: projects, models in every stage, datasets,
    runs, model cards and lineage (migrates first)."""
    settings = Settings()
    summary = asyncio.run(_demo(settings.database_url, seed, scale, if_empty))
    if summary is None:
        typer.echo("the catalog already holds models: demo not loaded")
    else:
        typer.echo(
            f"demo catalog: {summary.projects} projects, {summary.models} models, "
            f"{summary.versions} versions, {summary.datasets} datasets, {summary.runs} runs"
        )
