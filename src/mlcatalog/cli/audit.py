"""``mlcatalog audit verify``: check the journal's hash chain (the logic is store/audit.py)."""

import asyncio

import typer

from mlcatalog.settings import Settings
from mlcatalog.store import audit
from mlcatalog.store.database import Database, display_url

app = typer.Typer(help="The audit trail: the journal's hash chain.", no_args_is_help=True)


async def _verify(url: str, batch: int, head: tuple[int, str] | None) -> audit.Verification:
    database = Database(url)
    try:
        async with database.read() as session:
            return await audit.verify(session, batch=batch, head=head)
    finally:
        await database.dispose()


@app.command("verify")
def verify(
    batch: int = typer.Option(1000, min=1, help="Entries read per query."),
    head: str | None = typer.Option(
        None,
        metavar="SEQ:HASH",
        help="A head reported by an earlier verify and kept elsewhere: it must still be in the"
        " chain (a chain cut short at its end, or rehashed whole, shows only so).",
    ),
) -> None:
    """Check the journal's hash chain; exit 1 naming the first edited, deleted or moved entry."""
    settings = Settings()
    recorded = None
    if head is not None:
        seq, _, digest = head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise typer.BadParameter("a head is SEQ:HASH, as verify prints it", param_hint="--head")
        recorded = (int(seq), digest.lower())
    result = asyncio.run(_verify(settings.database_url, batch, recorded))
    where = display_url(settings.database_url)
    if not result.intact:
        typer.echo(
            f"{where}: journal chain broken at entry {result.first_bad_seq}"
            f" ({result.fault}): {result.reason}"
        )
        if result.fault in (audit.Fault.TRUNCATED, audit.Fault.REWRITTEN):
            typer.echo(f"the chain in the journal ({result.entries} entries) verifies by itself")
        else:
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
    typer.echo(f"head: {result.head_seq}:{result.head_hash} (keep it to check later: --head)")
