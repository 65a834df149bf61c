"""ITI-67 Find Document References: DocumentReference search and read (stub)."""

from __future__ import annotations

from xds.fhir.interactions import ResourceType
from xds.fhir.search import SearchSpec

__all__ = ["DOCUMENT_REFERENCE"]

DOCUMENT_REFERENCE = ResourceType(spec=SearchSpec("DocumentReference", ()))
