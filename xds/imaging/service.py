"""PLACEHOLDER (helper C replaces): RAD-69 operations."""
from __future__ import annotations
from xds.imaging.context import ImagingSource
from xds.soap import Operation


def imaging_operations(source: ImagingSource) -> dict[str, Operation]:
    return {}
