"""What every registry transaction needs: the database engine and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from xds.config import Settings

__all__ = ["Registry"]


@dataclass(frozen=True, slots=True)
class Registry:
    """The registry's state; transactions are functions of (Registry, request)."""

    engine: Engine
    settings: Settings
