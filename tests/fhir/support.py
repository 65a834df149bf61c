"""Helpers of the FHIR tests: requests to the real server and R4B checks of what it answers."""

from __future__ import annotations

from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class

__all__ = ["get", "r4b", "check_outcome", "entries", "FHIR_JSON"]

FHIR_JSON = "application/fhir+json"


def get(url: str, params: Any = None, **headers: str) -> httpx.Response:
    """GET ``url`` asking for FHIR JSON."""
    return httpx.get(url, params=params, headers={"Accept": FHIR_JSON, **headers}, timeout=60)


def r4b(resource: dict[str, Any]) -> Any:
    """``resource`` parsed by its R4B model (fails the test when R4 does not allow it)."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def check_outcome(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``response`` is an OperationOutcome with ``status`` (and issue ``code``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    r4b(body)
    if code is not None:
        assert code in [i["code"] for i in body["issue"]], body
    return body


def entries(bundle: dict[str, Any], mode: str = "match") -> list[dict[str, Any]]:
    """The resources of a searchset Bundle with search mode ``mode`` (after an R4B check)."""
    r4b(bundle)
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]
