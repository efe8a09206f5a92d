"""Alembic migrations, run by ``mlcatalog migrate`` on SQLite and PostgreSQL alike."""
