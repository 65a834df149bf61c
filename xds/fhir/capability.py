"""The CapabilityStatement at ``/fhir/metadata``: built from the resource types served, so it
lists exactly what is implemented (interactions, search parameters, includes, operations)."""

from __future__ import annotations

from typing import Any

from xds.fhir.context import FhirContext
from xds.fhir.interactions import ResourceType

__all__ = ["capability_statement", "SOFTWARE_VERSION"]

SOFTWARE_VERSION = "0.1.0"


def _resource(kind: ResourceType) -> dict[str, Any]:
    interactions = [*(["read"] if kind.read else []),
                    *(["search-type"] if kind.search else []), *kind.extra_interactions]
    entry: dict[str, Any] = {"type": kind.name,
                             "interaction": [{"code": code} for code in interactions]}
    if kind.profiles:
        entry["supportedProfile"] = list(kind.profiles)
    if kind.documentation:
        entry["documentation"] = kind.documentation
    if kind.search:
        entry["searchParam"] = [{"name": p.name, "type": str(p.type),
                                 "documentation": p.documentation} for p in kind.spec.params]
        if kind.spec.includes:
            entry["searchInclude"] = list(kind.spec.includes)
        if kind.spec.revincludes:
            entry["searchRevInclude"] = list(kind.spec.revincludes)
    if kind.operations:
        entry["operation"] = [{"name": op.name, "definition": op.definition,
                               **({"documentation": op.documentation} if op.documentation
                                  else {})} for op in kind.operations]
    return entry


def capability_statement(ctx: FhirContext, types: list[ResourceType], *,
                         transaction: bool) -> dict[str, Any]:
    """The server's CapabilityStatement (FHIR 4.0.1, JSON only)."""
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "IHE MHD Document Responder (ITI-66/67/68)"
                         + (" and Document Recipient (ITI-65)" if transaction else "")
                         + ", PIXm Manager (ITI-83), ImagingStudy over XDS-I.b and the DICOM "
                         "instance index. Searches take _count (at most 500), _offset, "
                         "_summary=count; unknown parameters are refused unless the request "
                         "says Prefer: handling=lenient.",
        "resource": [_resource(t) for t in types],
    }
    if transaction:
        rest["interaction"] = [{"code": "transaction",
                                "documentation": "ITI-65 Provide Document Bundle"}]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-03",
        "kind": "instance",
        "software": {"name": "xds", "version": SOFTWARE_VERSION},
        "implementation": {"description": "xds FHIR facade", "url": ctx.base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "instantiates": [
            "https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentResponder",
            "https://profiles.ihe.net/ITI/PIXm/CapabilityStatement/IHE.PIXm.Manager",
            *(["https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentRecipient"]
              if transaction else []),
        ],
        "rest": [rest],
    }
