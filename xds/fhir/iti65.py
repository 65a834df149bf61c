"""ITI-65 Provide Document Bundle (stub)."""

from __future__ import annotations

from typing import Any

from xds.fhir.context import FhirContext
from xds.fhir.errors import FhirError, Issue

__all__ = ["provide_bundle"]


def provide_bundle(ctx: FhirContext, bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, transaction-response Bundle) for the ITI-65 ``bundle``."""
    raise FhirError(501, Issue("not-supported", "ITI-65 is not implemented yet"))
