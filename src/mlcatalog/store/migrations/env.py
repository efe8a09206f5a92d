"""Alembic environment: migrations run on a connection handed in by mlcatalog.store.migrate."""

from alembic import context

from mlcatalog.store.rows import Base, is_mapped

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=is_mapped,
)
with context.begin_transaction():
    context.run_migrations()
