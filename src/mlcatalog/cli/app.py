"""The root ``mlcatalog`` command."""

import typer

from mlcatalog.cli import db, demo, serve

app = typer.Typer(
    help="mlcatalog: ML models, datasets, runs and model cards behind one GraphQL API.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("migrate")(db.migrate)
app.command("export-schema")(db.export_schema)
app.command("demo")(demo.demo)


def main() -> None:
    app()
