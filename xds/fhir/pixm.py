"""ITI-83 Mobile Patient Identifier Cross-reference Query: ``GET Patient/$ihe-pix``.

``sourceIdentifier`` (1..1) is ``urn:oid:<assigning authority>|<id>`` or ``<this FHIR
base>|Patient/<id>``; ``targetSystem`` (0..*) an assigning authority ``urn:oid:<oid>`` or this
FHIR base (asking for Patient references). The answer is a Parameters resource with one
``targetIdentifier`` per linked identifier and one ``targetId`` per linked Patient, never the
source itself (PIXm 3.1.0 §2:3.83.4.1.3; digest §3.6): 404 for an unknown id, 400 for an
unknown source domain, 403 for an unknown target system.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from xds.fhir.context import FhirContext
from xds.fhir.errors import FhirError, Issue, invalid
from xds.fhir.ids import domain_of_system, identifier_system, parse_patient_id, patient_resource_id
from xds.fhir.interactions import Handler, Operation
from xds.fhir.resources import fhir_response
from xds.mpi.model import MpiError, MpiErrorKind, PatientIdentifier

__all__ = ["handler", "PIX_OPERATION", "pix_query"]

PIX_OPERATION = Operation(
    "ihe-pix", "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix",
    "ITI-83: sourceIdentifier=urn:oid:<oid>|<id>, targetSystem=urn:oid:<oid> (repeatable)")
_PARAMS = frozenset({"sourceIdentifier", "targetSystem", "_format"})


def _source(ctx: FhirContext, value: str) -> PatientIdentifier:
    system, sep, code = value.partition("|")
    if not sep or not system or not code:
        raise invalid(f"sourceIdentifier={value!r}: give urn:oid:<assigning authority>|<id>",
                      expression="sourceIdentifier")
    if system.rstrip("/") == ctx.base_url:
        pid = parse_patient_id(code.removeprefix("Patient/"))
        if pid is None:
            raise FhirError(404, Issue("not-found", "sourceIdentifier Patient Identifier not found"))
        return pid
    domain = domain_of_system(system)
    if domain is None:
        raise FhirError(400, Issue("code-invalid",
                                   "sourceIdentifier Assigning Authority not found"))
    return PatientIdentifier(domain, code)


def pix_query(ctx: FhirContext, source: str, targets: list[str]) -> dict[str, Any]:
    """The Parameters answering ``source`` for ``targets`` (raises FhirError 400/403/404)."""
    if ctx.index is None:
        raise FhirError(501, Issue("not-supported", "this server runs no PIX Manager"))
    pid = _source(ctx, source)
    want_refs = not targets
    domains: list[str] = []
    for target in targets:
        if target.rstrip("/") == ctx.base_url:
            want_refs = True
            continue
        domain = domain_of_system(target)
        if domain is None:
            raise FhirError(403, Issue("code-invalid", "targetSystem not found"))
        domains.append(domain)
    try:
        linked = ctx.index.query(pid, domains)
    except MpiError as exc:
        if exc.kind is MpiErrorKind.UnknownDomain:
            raise FhirError(400, Issue("code-invalid",
                                       "sourceIdentifier Assigning Authority not found")) from None
        if exc.kind is MpiErrorKind.UnknownTargetDomain:
            raise FhirError(403, Issue("code-invalid", "targetSystem not found")) from None
        raise FhirError(404, Issue("not-found",
                                   "sourceIdentifier Patient Identifier not found")) from None
    if targets and not domains:  # only Patient references were asked for
        linked = ctx.index.query(pid)
    parameters: list[dict[str, Any]] = []
    if domains or not targets:
        parameters += [{"name": "targetIdentifier", "valueIdentifier": {
            "system": identifier_system(i.domain), "value": i.value}} for i in linked]
    if want_refs or domains:
        parameters += [{"name": "targetId", "valueReference": {"reference": f"Patient/{rid}"}}
                       for i in linked if (rid := patient_resource_id(i)) is not None]
    answer: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters:
        answer["parameter"] = parameters
    return answer


def handler(ctx: FhirContext) -> Handler:
    """The ``$ihe-pix`` route handler."""

    async def ihe_pix(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params.keys()) - _PARAMS)
        if unknown:
            raise invalid(f"$ihe-pix takes sourceIdentifier and targetSystem, not "
                          f"{', '.join(unknown)}", expression=unknown[0])
        sources = params.getlist("sourceIdentifier")
        if len(sources) != 1:
            raise invalid(f"$ihe-pix takes exactly one sourceIdentifier, got {len(sources)}",
                          expression="sourceIdentifier")
        targets = [t for value in params.getlist("targetSystem") for t in value.split(",") if t]
        answer = await run_in_threadpool(pix_query, ctx, sources[0], targets)
        return fhir_response(answer)

    return ihe_pix
