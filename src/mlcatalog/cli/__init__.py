"""The mlcatalog command line (Typer), one module per command group."""
