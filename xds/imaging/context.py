"""What every Imaging Document Source transaction needs: database, blob store, settings, archive."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from xds.config import Settings
from xds.store.blobs import BlobStore
from xds.store.instances import Instance

__all__ = ["ImagingSource", "Content", "Archive"]


@dataclass(frozen=True, slots=True)
class Content:
    """An instance's Part-10 bytes in one transfer syntax, read when ``open`` is called."""

    transfer_syntax_uid: str
    #: Bytes, when known before sending (always for the local store).
    size: int | None
    open: Callable[[], Iterator[bytes]]
    #: The SHA-256 of bytes sent exactly as stored, which ``open_range(start, end)`` can then
    #: read in part (HTTP Range); None for converted or archived content.
    sha256: str | None = None
    open_range: Callable[[int, int | None], Iterator[bytes]] | None = None


class Archive(Protocol):
    """An external image archive (a PACS over DICOMweb) that holds some of the instances."""

    def content(self, instance: Instance, accepted: Sequence[str]) -> Content | None:
        """The instance in one of ``accepted`` syntaxes (``"*"``: as stored), None if impossible."""
        ...


@dataclass(frozen=True, slots=True)
class ImagingSource:
    """The Imaging Document Source's state; transactions are functions of (ImagingSource, request)."""

    engine: Engine
    blobs: BlobStore
    settings: Settings
    archive: Archive | None = None

    @property
    def unique_id(self) -> str:
        """This source's repositoryUniqueId: the KOS RetrieveLocationUID, RAD-69's target."""
        return self.settings.imaging_source_unique_id

    @property
    def dicomweb_url(self) -> str:
        """Base URL of this source's WADO-RS service (the KOS RetrieveURL prefix)."""
        return self.settings.base_url + "/dicomweb"
