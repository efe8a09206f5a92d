"""Migration scripts, one per schema change, named by date."""
