"""Endpoint (read): the DICOMweb bases ImagingStudy resources point at (stub)."""

from __future__ import annotations

from xds.fhir.interactions import ResourceType
from xds.fhir.search import SearchSpec

__all__ = ["ENDPOINT"]

ENDPOINT = ResourceType(spec=SearchSpec("Endpoint", ()))
