"""The FHIR facade's audit at its endpoint boundary: which transaction a request was, built
from the route, its parameters and the answer's status (one outbox INSERT per request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from starlette.requests import Request

from xds.audit.events import AuditEvent
from xds.audit.fhir_events import binary_event, bundle_event, cx_of_token, fhir_query_event
from xds.audit.transactions import record_after
from xds.fhir.context import TRANSACTIONS, FhirContext
from xds.fhir.ids import parse_patient_id

__all__ = ["Auditor", "auditor", "BUNDLE_STATE"]

#: Audits one answered request: (request, HTTP status); runs in a worker thread.
Auditor = Callable[[Request, int], None]
#: ``request.state`` attribute where the ITI-65 route leaves the parsed Bundle for its audit.
BUNDLE_STATE = "audit_bundle"

#: Search parameters naming the patient, in preference order.
_PATIENT_PARAMS = ("patient.identifier", "subject.identifier", "sourceIdentifier", "patient",
                   "subject")
#: Resource types that hold no patient data: not audited.
_NOT_AUDITED = frozenset({"Endpoint"})

Kind = Literal["search", "read", "pixm", "binary", "bundle"]


def _referenced(reference: str) -> str:
    """The CX of a Patient reference (``Patient/<id>``, absolute or not), else the reference."""
    _, sep, resource_id = reference.rpartition("Patient/")
    found = parse_patient_id(resource_id) if sep and "/" not in resource_id else None
    return found.cx if found is not None else reference


def _patient(request: Request, resource_type: str) -> str:
    params = request.query_params
    names = ("identifier", *_PATIENT_PARAMS) if resource_type == "Patient" else _PATIENT_PARAMS
    for name in names:
        value = params.get(name)
        if value:
            return cx_of_token(value) if "|" in value else _referenced(value)
    return ""


def _bundle_ids(bundle: Any) -> tuple[str, str]:
    """(patient, SubmissionSet uniqueId) of an ITI-65 Bundle's List, best effort."""
    for entry in (bundle.get("entry") or []) if isinstance(bundle, dict) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "List":
            continue
        unique_id = next((str(i.get("value", "")) for i in resource.get("identifier") or []
                          if isinstance(i, dict) and i.get("use") == "usual"), "")
        subject = resource.get("subject") or {}
        token = subject.get("identifier") or {}
        patient = cx_of_token(f"{token.get('system', '')}|{token.get('value', '')}") \
            if token.get("value") else _referenced(str(subject.get("reference", "")))
        return patient, unique_id.removeprefix("urn:oid:")
    return "", ""


def auditor(ctx: FhirContext, kind: Kind) -> Auditor:
    """The Auditor of one kind of route."""
    settings = ctx.settings

    def event(request: Request, status: int) -> AuditEvent | None:
        if kind == "binary":
            return binary_event(settings, request.path_params.get("id", ""), status)
        if kind == "bundle":
            patient, unique_id = _bundle_ids(getattr(request.state, BUNDLE_STATE, None))
            return bundle_event(settings, status, patient=patient, submission_set_uid=unique_id)
        if kind == "pixm":
            return fhir_query_event(settings, "ITI-83", "Patient", request.url.query, status,
                                    patient=_patient(request, ""))
        resource_type = request.path_params.get("type", "")
        if resource_type in _NOT_AUDITED:
            return None
        code = TRANSACTIONS.get(resource_type)
        if kind == "read":
            return fhir_query_event(settings, code, resource_type,
                                    f"{resource_type}/{request.path_params.get('id', '')}",
                                    status, interaction="read")
        return fhir_query_event(settings, code, resource_type, request.url.query, status,
                                patient=_patient(request, resource_type))

    def audit(request: Request, status: int) -> None:
        record_after(ctx.engine, settings,
                     lambda: [e for e in (event(request, status),) if e is not None])

    return audit
