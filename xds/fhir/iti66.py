"""ITI-66 Find Document Lists: List search and read for submission sets and folders (stub)."""

from __future__ import annotations

from xds.fhir.interactions import ResourceType
from xds.fhir.search import SearchSpec

__all__ = ["LIST"]

LIST = ResourceType(spec=SearchSpec("List", ()))
