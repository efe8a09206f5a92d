"""``python -m mlcatalog`` runs the CLI."""

from mlcatalog.cli.app import main

main()
