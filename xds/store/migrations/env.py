"""Alembic environment: migrates the connection handed over by ``xds.store.db.migrate``."""

from __future__ import annotations

from alembic import context

from xds.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through xds.store.db.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
