"""ITI-68 Retrieve Document: ``GET /fhir/Binary/{id}`` streams the stored bytes (stub)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from xds.fhir.context import FhirContext
from xds.fhir.interactions import ResourceType
from xds.fhir.search import SearchSpec

__all__ = ["BINARY", "routes"]

BINARY = ResourceType(spec=SearchSpec("Binary", ()), extra_interactions=("read",))


def routes(ctx: FhirContext) -> list[BaseRoute]:
    """The Binary routes (before the generic read route)."""
    return []
