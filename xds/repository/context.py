"""What every repository transaction needs: database, blob store, settings and the way to the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from xds.config import Settings
from xds.ebrim.rim import Element
from xds.model.errors import RegistryError
from xds.store.blobs import BlobStore

__all__ = ["Repository", "Register"]

#: Sends a SubmitObjectsRequest as ITI-42; returns its warnings or raises XdsError.
Register = Callable[[Element], list[RegistryError]]


@dataclass(frozen=True, slots=True)
class Repository:
    """The repository's state; transactions are functions of (Repository, request)."""

    engine: Engine
    blobs: BlobStore
    settings: Settings
    register: Register

    @property
    def unique_id(self) -> str:
        """This repository's repositoryUniqueId."""
        return self.settings.repository_unique_id
