"""``mlcatalog indexer``, ``reindex`` and ``search-check``: the search index's upkeep."""

import asyncio
import signal

import typer
from rich.progress import Progress

from mlcatalog.search.backend import open_backend
from mlcatalog.search.documents import document_id
from mlcatalog.search.indexer import Indexer, run_forever
from mlcatalog.search.maintenance import check, reindex
from mlcatalog.settings import Settings
from mlcatalog.store.database import Database


async def _indexer() -> None:
    settings = Settings()
    database = Database(settings.database_url)
    backend, name = open_backend(settings.search, database)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        indexer = Indexer(database, backend, name=name)
        await run_forever(indexer, poll_seconds=settings.search.poll_seconds, stop=stop)
    finally:
        await backend.close()
        await database.dispose()


def indexer() -> None:
    """Keep the search index in step with the journal, alone (run `serve` with
    MLCATALOG_SEARCH__SERVE_INDEXER=false beside it)."""
    asyncio.run(_indexer())


async def _reindex() -> int:
    settings = Settings()
    database = Database(settings.database_url)
    backend, name = open_backend(settings.search, database)
    try:
        with Progress() as bar:
            task = bar.add_task("rebuilding the search index", total=None)
            return await reindex(
                database,
                backend,
                name=name,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        await backend.close()
        await database.dispose()


def reindex_command() -> None:
    """Rebuild the search index from the store and swap it in (search never finds nothing)."""
    typer.echo(f"reindexed {asyncio.run(_reindex())} documents")


async def _check() -> bool:
    settings = Settings()
    database = Database(settings.database_url)
    backend, name = open_backend(settings.search, database)
    try:
        drift = await check(database, backend, name=name)
    finally:
        await backend.close()
        await database.dispose()
    for label, keys in (("missing", drift.missing), ("extra", drift.extra), ("stale", drift.stale)):
        if keys:
            examples = ", ".join(document_id(key) for key in keys[:10])
            typer.echo(f"{label}: {len(keys)} documents, e.g. {examples}")
    if drift.unread_entries:
        typer.echo(f"journal entries not yet indexed: {drift.unread_entries}")
    typer.echo("no drift" if drift.clean else "drift found")
    return drift.clean


def search_check() -> None:
    """Compare the search index with the store; exits 1 when they differ."""
    if not asyncio.run(_check()):
        raise typer.Exit(1)
