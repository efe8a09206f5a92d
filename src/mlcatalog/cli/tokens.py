"""``mlcatalog tokens create|list|revoke``: API tokens for pipelines (the logic is auth/tokens)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from mlcatalog.auth import tokens
from mlcatalog.cli.origin import cli_origin
from mlcatalog.settings import Settings
from mlcatalog.store.database import Database, display_url

app = typer.Typer(help="API tokens for pipelines and service accounts.", no_args_is_help=True)

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except tokens.TokenError as error:
        typer.echo(f"{display_url(settings.database_url)}: {error}", err=True)
        raise typer.Exit(1) from None


@app.command("create")
def create(
    name: str = typer.Option(..., help="The token's name; it acts as token:<name>#<public id>."),
    project: str = typer.Option(..., help="The project it is for."),
    role: str = typer.Option(..., help="Its role in that project (viewer, contributor, …)."),
    expires_in_days: int | None = typer.Option(
        None, min=1, help="Its lifetime in days (default MLCATALOG_AUTH__TOKEN_DAYS, 90)."
    ),
) -> None:
    """Make a token and print it, once: only its hash is kept."""
    settings = Settings()
    days = expires_in_days or settings.auth.token_days
    created = _run(
        settings,
        lambda database: tokens.create(
            database,
            origin=cli_origin(),
            name=name,
            project=project,
            role=role,
            days=days,
            max_days=settings.auth.token_max_days,
        ),
    )
    info = created.info
    typer.echo(
        f"{display_url(settings.database_url)}: token {info.name!r} ({info.prefix}) acts as"
        f" {info.subject}, {info.role} in {info.project},"
        f" until {info.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    typer.echo(created.token)
    typer.echo(
        "Keep it now: it will not be shown again (only its hash is stored)."
        " Send it as `Authorization: Bearer <token>`."
    )


@app.command("list")
def list_tokens(
    all_: bool = typer.Option(False, "--all", help="Revoked tokens too."),
) -> None:
    """The tokens, never their secrets."""
    settings = Settings()
    listed = _run(settings, lambda database: tokens.listing(database, include_revoked=all_))
    typer.echo(f"{display_url(settings.database_url)}: {len(listed)} tokens")
    for info in listed:
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "live"
        typer.echo(
            f"{info.name}\t{info.prefix}\t{info.project}\t{info.role}"
            f"\texpires {info.expires_at:%Y-%m-%d}\t{state}\tby {info.created_by}"
        )


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: its next request is refused."""
    settings = Settings()
    info = _run(settings, lambda database: tokens.revoke(database, origin=cli_origin(), name=name))
    typer.echo(f"{display_url(settings.database_url)}: token {info.name!r} ({info.prefix}) revoked")
