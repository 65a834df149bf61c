"""PLACEHOLDER (helper D replaces): an external archive over DICOMweb."""
from __future__ import annotations
from collections.abc import Sequence
from xds.imaging.context import Content
from xds.store.instances import Instance


class DicomwebArchive:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def content(self, instance: Instance, accepted: Sequence[str]) -> Content | None:
        raise FileNotFoundError("archive not built yet")
