"""The rules of the catalog: plain functions over a unit of work and the calling principal."""
