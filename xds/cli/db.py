"""``xds db``: the registry database's schema revision (Alembic), reported and upgraded on
purpose, never by a server starting."""

from __future__ import annotations

import typer

from xds.cli.options import DatabaseUrl, DataDir, settings_from

__all__ = ["app", "upgrade", "status"]

app = typer.Typer(no_args_is_help=True, help="The database schema: its revision, its upgrade.")


def _revision(current: tuple[str, ...]) -> str:
    return ", ".join(current) or "none"


@app.command("status")
def status(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the schema revision of the database and the one this version needs; exit 1 when
    they differ (an empty database too)."""
    from xds.store.db import open_engine, schema_state

    settings = settings_from(data_dir=data_dir, database_url=database_url)
    engine = open_engine(settings)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    typer.echo(f"database: {settings.effective_database_url.split('@')[-1]}")
    typer.echo(f"current: {_revision(state.current)}")
    typer.echo(f"head: {state.head}")
    typer.echo(state.describe())
    if not state.is_current:
        raise typer.Exit(1)


@app.command("upgrade")
def upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Run the migrations that bring the schema to this version's head revision; prints the
    revision before and after. Back the database up first: an upgrade is not undone. A
    database of a newer version, or not of xds, is left alone (exit 1)."""
    from xds.store.db import migrate, open_engine, schema_state

    settings = settings_from(data_dir=data_dir, database_url=database_url)
    engine = open_engine(settings)
    try:
        before = schema_state(engine)
        typer.echo(f"database: {settings.effective_database_url.split('@')[-1]}")
        typer.echo(f"before: {_revision(before.current)}")
        if not before.is_empty and not before.is_behind and not before.is_current:
            typer.echo(f"xds db upgrade: {before.describe()}", err=True)
            raise typer.Exit(1)
        migrate(engine)
        after = schema_state(engine)
    finally:
        engine.dispose()
    typer.echo(f"after: {_revision(after.current)}")
    typer.echo("already at the head revision" if before.is_current
               else f"upgraded to revision {after.head}")
