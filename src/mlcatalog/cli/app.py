"""The root ``mlcatalog`` command."""

import typer

from mlcatalog.cli import audit, db, demo, policy, search, serve, tokens, webhooks

app = typer.Typer(
    help="mlcatalog: ML models, datasets, runs and model cards behind one GraphQL API.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's local variables would show the settings, database password included.
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve.serve)
app.command("migrate")(db.migrate)
app.command("export-schema")(db.export_schema)
app.command("demo")(demo.demo)
app.command("indexer")(search.indexer)
app.command("reindex")(search.reindex_command)
app.command("search-check")(search.search_check)
app.add_typer(audit.app, name="audit")
app.add_typer(tokens.app, name="tokens")
app.add_typer(policy.app, name="policy")
app.add_typer(webhooks.app, name="webhooks")


def main() -> None:
    app()
