"""ImagingStudy (read, search) from the instance index and from KOS manifests (stub)."""

from __future__ import annotations

from xds.fhir.interactions import ResourceType
from xds.fhir.search import SearchSpec

__all__ = ["IMAGING_STUDY"]

IMAGING_STUDY = ResourceType(spec=SearchSpec("ImagingStudy", ()))
