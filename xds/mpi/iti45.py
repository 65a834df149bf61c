"""ITI-45 PIXV3 Query, PIX Manager side: PRPA_IN201309UV02 -> PRPA_IN201310UV02 (ITI TF-2b §3.45)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

from lxml import etree

from xds.audit.events import AuditEvent, Outcome
from xds.audit.pix_events import pix_query_event
from xds.audit.transactions import record_after
from xds.hl7v3 import (
    ACK_DETAIL_CODE_SYSTEM,
    HL7_ERROR_CODE_SYSTEM,
    INTERACTION_ID_ROOT,
    AckDetail,
    AcknowledgementDetailCode,
    AcknowledgementType,
    HL7ErrorCode,
    Interaction,
    QueryResponseCode,
    Transmission,
    add_acknowledgement,
    add_ii,
    add_pn,
    find,
    find_all,
    read_ii,
    read_transmission,
    sub,
    syntax_details,
    transmission,
    validate,
)
from xds.mpi.iti44 import mpi_error_detail
from xds.mpi.index import PatientIndex
from xds.mpi.model import MpiError, MpiErrorKind, PatientIdentifier

__all__ = ["PARAMETER_LIST", "PATIENT_IDENTIFIER_LOCATION", "pix_query", "query_error_response",
           "add_registration_event"]

log = logging.getLogger("xds.mpi.iti45")

#: Where the query parameters are; error locations point below it (ITI TF-2b §3.45.4.2.3).
PARAMETER_LIST = "/PRPA_IN201309UV02/controlActProcess/queryByParameter/parameterList"
#: The location of an unknown patient id or an unknown source domain.
PATIENT_IDENTIFIER_LOCATION = PARAMETER_LIST + "/patientIdentifier/value"


def pix_query(index: PatientIndex, message: etree._Element, *, device_id: str) -> etree._Element:
    """Answer one PRPA_IN201309UV02 from ``index`` (and audit it: Query E, the
    queryByParameter as the query).

    OK (AA) with the linked ids, never the queried one; NF (AA) when none is in the requested
    domains; AE (AE) with a 204 detail located at ``…/patientIdentifier/value`` for an unknown
    id or source domain, at ``…/dataSource[n]/value`` for each unknown target domain; QE (AE)
    with SYN details when ``message`` is not schema-valid.
    """
    try:
        response = _pix_query(index, message, device_id=device_id)
    except Exception as exc:
        _audit(index, message, Outcome.MAJOR_FAILURE, type(exc).__name__)
        raise
    ack = find(response, "acknowledgement/typeCode")
    ok = ack is not None and ack.get("code") == AcknowledgementType.AA.value
    _audit(index, message, Outcome.SUCCESS if ok else Outcome.SERIOUS_FAILURE)
    return response


def _audit(index: PatientIndex, message: etree._Element, outcome: Outcome,
           text: str = "") -> None:
    settings = index.settings

    def build() -> AuditEvent:
        query = find(message, "controlActProcess/queryByParameter")
        value = find(query, "parameterList/patientIdentifier/value") if query is not None else None
        ii = read_ii(value) if value is not None else None
        patient = PatientIdentifier(ii.root, ii.extension).cx \
            if ii is not None and ii.root and ii.extension else ""
        query_id = find(query, "queryId") if query is not None else None
        object_id = "" if query_id is None else \
            f"{query_id.get('root', '')}^{query_id.get('extension', '')}".strip("^")
        payload = etree.tostring(query, encoding="utf-8") if query is not None else b""
        return pix_query_event(settings, "ITI-45", patient, object_id, payload, outcome,
                               description=text)

    record_after(index.engine, settings, build)


def _pix_query(index: PatientIndex, message: etree._Element, *,
               device_id: str) -> etree._Element:
    header = read_transmission(message)
    issues = validate(message, Interaction.PRPA_IN201309UV02)
    query = find(message, "controlActProcess/queryByParameter")
    if issues:
        log.info("ITI-45 refused, not schema-valid: %s", issues[0].message)
        return query_error_response(header, syntax_details(issues), device_id=device_id)
    if query is None:
        detail = AckDetail(code=AcknowledgementDetailCode.SYN105, code_system=ACK_DETAIL_CODE_SYSTEM,
                           text="queryByParameter is required",
                           location="/PRPA_IN201309UV02/controlActProcess/queryByParameter")
        return query_error_response(header, [detail], device_id=device_id)
    value = find(query, "parameterList/patientIdentifier/value")
    assert value is not None  # the schema requires it
    ii = read_ii(value)
    if ii.root is None or ii.extension is None:
        detail = AckDetail(code=HL7ErrorCode.RequiredFieldMissing, code_system=HL7_ERROR_CODE_SYSTEM,
                           text="patientIdentifier/value needs @root and @extension",
                           location=PATIENT_IDENTIFIER_LOCATION)
        return query_error_response(header, [detail], query, device_id=device_id)
    # (position of the dataSource, 1-based; its domain) for every requested domain
    targets = [(n, read_ii(v).root or "")
               for n, source in enumerate(find_all(query, "parameterList/dataSource"), 1)
               for v in find_all(source, "value")]
    try:
        found = index.query(PatientIdentifier(ii.root, ii.extension), [d for _, d in targets])
    except MpiError as exc:
        log.info("ITI-45 %s", exc.text)
        if exc.kind == MpiErrorKind.UnknownTargetDomain:
            details = [mpi_error_detail(exc, f"{PARAMETER_LIST}/dataSource[{targets[p][0]}]/value")
                       for p in exc.positions]
        else:
            details = [mpi_error_detail(exc, PATIENT_IDENTIFIER_LOCATION)]
        return query_error_response(header, details, query, response_code=QueryResponseCode.AE,
                                    device_id=device_id)
    response = _response(header, AcknowledgementType.AA, (), device_id=device_id)
    control = _control_act(response)
    if found:
        add_registration_event(control, found, affinity_domain=index.affinity_domain,
                               custodian=device_id)
    _query_ack(control, query, QueryResponseCode.OK if found else QueryResponseCode.NF,
               total=1 if found else 0)
    control.append(copy.deepcopy(query))
    return response


def query_error_response(header: Transmission | None, details: Sequence[AckDetail],
                         query: etree._Element | None = None, *,
                         response_code: QueryResponseCode = QueryResponseCode.QE,
                         device_id: str) -> etree._Element:
    """A PRPA_IN201310UV02 AE answer with ``details``; ``query`` (a valid queryByParameter) is
    echoed when given."""
    response = _response(header, AcknowledgementType.AE, details, device_id=device_id)
    control = _control_act(response)
    _query_ack(control, query, response_code, total=None)
    if query is not None:
        control.append(copy.deepcopy(query))
    return response


def add_registration_event(control: etree._Element, identifiers: Sequence[PatientIdentifier], *,
                           affinity_domain: str, custodian: str) -> etree._Element:
    """Append ``subject/registrationEvent`` naming ``identifiers``: those of one domain (the
    affinity domain when present) in ``patient/id``, the others in one
    ``patientPerson/asOtherIDs`` per domain; no demographics (``name nullFlavor="NA"``)."""
    domains = list(dict.fromkeys(i.domain for i in identifiers))
    primary = affinity_domain if affinity_domain in domains else domains[0]
    subject = sub(control, "subject", {"typeCode": "SUBJ"})
    event = sub(subject, "registrationEvent", {"classCode": "REG", "moodCode": "EVN"})
    sub(event, "statusCode", {"code": "active"})
    patient = sub(sub(event, "subject1", {"typeCode": "SBJ"}), "patient", {"classCode": "PAT"})
    for pid in identifiers:
        if pid.domain == primary:
            add_ii(patient, "id", pid.domain, pid.value)
    sub(patient, "statusCode", {"code": "active"})
    person = sub(patient, "patientPerson", {"classCode": "PSN", "determinerCode": "INSTANCE"})
    add_pn(person, "name", None, None)
    for domain in domains:
        if domain == primary:
            continue
        other = sub(person, "asOtherIDs", {"classCode": "PAT"})
        for pid in identifiers:
            if pid.domain == domain:
                add_ii(other, "id", pid.domain, pid.value)
        organization = sub(other, "scopingOrganization",
                           {"classCode": "ORG", "determinerCode": "INSTANCE"})
        add_ii(organization, "id", domain)
    assigned = sub(sub(event, "custodian", {"typeCode": "CST"}), "assignedEntity",
                   {"classCode": "ASSIGNED"})
    add_ii(assigned, "id", custodian)
    return event


def _response(header: Transmission | None, code: AcknowledgementType,
              details: Sequence[AckDetail], *, device_id: str) -> etree._Element:
    response = transmission(Interaction.PRPA_IN201310UV02, sender=device_id,
                            receiver=header.sender if header else None)
    add_acknowledgement(response, code, header.id if header else None, details)
    return response


def _control_act(response: etree._Element) -> etree._Element:
    control = sub(response, "controlActProcess", {"classCode": "CACT", "moodCode": "EVN"})
    sub(control, "code", {"code": Interaction.PRPA_IN201310UV02.trigger_event,
                          "codeSystem": INTERACTION_ID_ROOT})
    return control


def _query_ack(control: etree._Element, query: etree._Element | None,
               code: QueryResponseCode, *, total: int | None) -> None:
    ack = sub(control, "queryAck")
    query_id = find(query, "queryId") if query is not None else None
    if query_id is not None:
        ack.append(copy.deepcopy(query_id))
    sub(ack, "statusCode", {"code": "deliveredResponse"})
    sub(ack, "queryResponseCode", {"code": code})
    if total is not None:
        sub(ack, "resultTotalQuantity", {"value": str(total)})
        sub(ack, "resultCurrentQuantity", {"value": str(total)})
        sub(ack, "resultRemainingQuantity", {"value": "0"})
