"""``mlcatalog audit verify``: check the journal's hash chain (the logic is store/audit.py)."""

import asyncio

import typer

from mlcatalog.settings import Settings
from mlcatalog.store import audit
from mlcatalog.store.database import Database, display_url

app = typer.Typer(help="The audit trail: the journal's hash chain.", no_args_is_help=True)


async def _verify(url: str, batch: int) -> audit.Verification:
    database = Database(url)
    try:
        async with database.read() as session:
            return await audit.verify(session, batch=batch)
    finally:
        await database.dispose()


@app.command("verify")
def verify(
    batch: int = typer.Option(1000, min=1, help="Entries read per query."),
) -> None:
    """Check the journal's hash chain; exit 1 naming the first edited, deleted or moved entry."""
    settings = Settings()
    result = asyncio.run(_verify(settings.database_url, batch))
    where = display_url(settings.database_url)
    if not result.intact:
        typer.echo(
            f"{where}: journal chain broken at entry {result.first_bad_seq}"
            f" ({result.fault}): {result.reason}"
        )
        typer.echo(f"the {result.entries} entries before it verify")
        raise typer.Exit(1)
    if result.head_seq is None:
        typer.echo(f"{where}: the journal is empty")
        return
    typer.echo(f"{where}: journal intact, {result.entries} entries")
    if result.gaps:
        typer.echo(
            f"{result.gaps} gaps in sequence numbers (rolled-back transactions; the links show"
            " that no entry is missing)"
        )
    typer.echo(f"head: entry {result.head_seq}, hash {result.head_hash}")
