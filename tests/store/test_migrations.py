"""Alembic owns the schema: migrating an empty database gives exactly the tables of xds.store.tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from xds.store.tables import metadata


def test_migrations_produce_the_declared_schema(engine: Engine) -> None:
    # ``engine`` is the session server's database, migrated by its lifespan (SQLite and PostgreSQL).
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
