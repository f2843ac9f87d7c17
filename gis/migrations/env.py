"""Alembic environment: runs the project's migrations on the connection it is handed."""

from alembic import context

from gis.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through gis.store.migrate(), which passes a connection")
context.configure(connection=connection, target_metadata=target_metadata)
with context.begin_transaction():
    context.run_migrations()
