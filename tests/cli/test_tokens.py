"""``mlcatalog tokens``: create prints the token once, list shows no secret, revoke ends it; the
database password is never shown."""

import asyncio
import os
import pwd

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from mlcatalog.auth import tokens
from mlcatalog.auth.oidc import Unauthenticated
from mlcatalog.cli.app import app
from mlcatalog.store.database import Database
from mlcatalog.store.rows import ApiTokenRow, JournalRow
from tests.cli.test_audit import SECRET, with_password


async def cli(url: str, *args: str) -> Result:
    runner = CliRunner()
    env = {"MLCATALOG_DATABASE_URL": url}
    return await asyncio.to_thread(runner.invoke, app, ["tokens", *args], env=env)


def token_in(output: str) -> str:
    [token] = [line for line in output.splitlines() if line.startswith("mlc_")]
    return token


async def test_create_prints_the_token_once_and_it_verifies(database: Database) -> None:
    url = with_password(database.url)
    result = await cli(url, "create", "--name", "ci", "--project", "fraud", "--role", "viewer")
    assert result.exit_code == 0, result.output
    token = token_in(result.output)
    assert result.output.count(token) == 1
    assert "will not be shown again" in result.output
    assert f"acts as token:ci#{token[4:20]}, viewer in fraud" in result.output
    assert SECRET not in result.output
    principal = await tokens.ApiTokens(database).principal(token)
    assert principal.subject == f"token:ci#{token[4:20]}"
    async with database.read() as session:
        row = (await session.scalars(select(ApiTokenRow))).one()
        [entry] = (await session.scalars(select(JournalRow))).all()
    assert (row.expires_at - row.created_at).days == 90
    assert entry.action == "api_token.created" and entry.actor.startswith("cli")


async def test_expires_in_days_sets_the_lifetime_within_the_maximum(database: Database) -> None:
    args = ("create", "--name", "ci", "--project", "p", "--role", "viewer", "--expires-in-days")
    assert (await cli(database.url, *args, "7")).exit_code == 0
    async with database.read() as session:
        row = (await session.scalars(select(ApiTokenRow))).one()
    assert (row.expires_at - row.created_at).days == 7
    too_long = await cli(database.url, *args[:2], "other", *args[3:], "400")
    assert too_long.exit_code == 1
    assert "1 to 365 days" in too_long.output


async def test_list_shows_no_secret_and_revoke_ends_the_token(database: Database) -> None:
    url = with_password(database.url)
    made = await cli(url, "create", "--name", "ci", "--project", "fraud", "--role", "viewer")
    token = token_in(made.output)
    secret = token.split("_", 2)[2]
    listed = await cli(url, "list")
    assert listed.exit_code == 0, listed.output
    assert "1 tokens" in listed.output and token[:20] in listed.output
    assert secret not in listed.output and tokens.secret_hash(secret) not in listed.output
    assert SECRET not in listed.output
    revoked = await cli(url, "revoke", "ci")
    assert revoked.exit_code == 0, revoked.output
    assert "token 'ci'" in revoked.output and "revoked" in revoked.output
    assert SECRET not in revoked.output
    with pytest.raises(Unauthenticated, match="was revoked"):
        await tokens.ApiTokens(database).principal(token)
    assert "0 tokens" in (await cli(url, "list")).output
    assert "revoked" in (await cli(url, "list", "--all")).output
    again = await cli(url, "revoke", "ci")
    assert again.exit_code == 1
    assert "no token named 'ci'" in again.output
    assert SECRET not in again.output


async def test_the_journal_names_the_process_account_not_the_user_variable(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    result = await cli(database.url, "create", "--name", "ci", "--project", "p", "--role", "r")
    assert result.exit_code == 0, result.output
    async with database.read() as session:
        [entry] = (await session.scalars(select(JournalRow))).all()
    assert entry.actor == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
    assert (entry.auth_method, entry.client_address, entry.token_name, entry.request_id) == (
        "os-account",
        "cli",
        None,
        None,
    )
