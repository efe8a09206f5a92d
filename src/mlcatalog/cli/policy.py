"""``mlcatalog policy check``: explain one decision of the access policy (auth/access.py)."""

import typer

from mlcatalog.auth.access import EVERY_PROJECT, Policy, PolicyError, PolicyFiles
from mlcatalog.settings import Settings

app = typer.Typer(
    help="The access policy (policies/ or MLCATALOG_AUTH__POLICY_DIR).", no_args_is_help=True
)


@app.command("check")
def check(
    subject: str = typer.Argument(help="user:<subject>, group:<group> or a role"),
    obj: str = typer.Argument(metavar="OBJECT", help="Type.field or Mutation.name"),
    action: str = typer.Argument(help="read, write or write-own"),
    project: str = typer.Option(EVERY_PROJECT, help="The project the request is about."),
) -> None:
    """Say whether SUBJECT may ACTION OBJECT in PROJECT, which line allows it and which roles the
    subject holds there; exit 1 when denied."""
    directory = Settings().auth.policy_dir
    try:
        policy = Policy(PolicyFiles.in_directory(directory))
    except PolicyError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    roles = sorted(policy.roles(subject, project))
    typer.echo(f"policy: {directory} (sha256 {policy.digest[:12]}…)")
    typer.echo(f"{subject} holds in {project!r}: {', '.join(roles) or 'no role'}")
    rule = policy.explain(subject, project, obj, action)
    if rule:
        typer.echo(f"ALLOWED {action} {obj}: by the line `p, {', '.join(rule)}`")
        return
    classified = policy.enforcer.has_named_grouping_policy("g2", obj, "sensitive")
    hint = " (a sensitive field: only a line on `sensitive` grants it)" if classified else ""
    typer.echo(f"DENIED {action} {obj}: no line allows it{hint}")
    raise typer.Exit(1)
