"""Options shared by every subcommand that touches the store, each also read from ``XDS_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xds.config import Settings

__all__ = ["DataDir", "DatabaseUrl", "settings_from"]

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="XDS_DATA_DIR", help="Data directory (default ./xds-data).")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="XDS_DATABASE_URL",
    help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir).")]


def settings_from(**options: object) -> Settings:
    """Settings from ``XDS_*`` variables overridden by the given command-line options."""
    return Settings.from_env(None, **options)
