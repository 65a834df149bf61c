"""ITI-44 Patient Identity Feed HL7 V3, PIX Manager side: PRPA_IN201301UV02 (add),
PRPA_IN201302UV02 (revise) and PRPA_IN201304UV02 (merge) -> MCCI_IN000002UV01 (ITI TF-2b §3.44)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree
from sqlalchemy import Connection

from xds.audit.events import Action, AuditEvent, Outcome
from xds.audit.pix_events import feed_event, merge_events
from xds.audit.transactions import record_after, record_in
from xds.hl7v3 import (
    ACK_DETAIL_CODE_SYSTEM,
    HL7_ERROR_CODE_SYSTEM,
    AckDetail,
    AcknowledgementDetailCode,
    AcknowledgementType,
    HL7ErrorCode,
    Interaction,
    build_ack,
    find,
    find_all,
    location_of,
    read_ad,
    read_ii,
    read_pn,
    read_tel,
    read_transmission,
    syntax_details,
    validate,
)
from xds.mpi.index import PatientIndex
from xds.mpi.model import Demographics, MpiError, MpiErrorKind, PatientIdentifier, Person

__all__ = ["FEED_INTERACTIONS", "MPI_ERROR_CODES", "patient_identity_feed", "mpi_error_detail",
           "read_demographics"]

log = logging.getLogger("xds.mpi.iti44")

#: The interactions of the feed; each is answered with an MCCI_IN000002UV01.
FEED_INTERACTIONS = (Interaction.PRPA_IN201301UV02, Interaction.PRPA_IN201302UV02,
                     Interaction.PRPA_IN201304UV02)

#: MpiError kind -> HL7 table 0357 code of the acknowledgementDetail (ITI-44 and ITI-45).
MPI_ERROR_CODES: dict[MpiErrorKind, HL7ErrorCode] = {
    MpiErrorKind.UnknownDomain: HL7ErrorCode.UnknownKeyIdentifier,
    MpiErrorKind.UnknownIdentifier: HL7ErrorCode.UnknownKeyIdentifier,
    MpiErrorKind.UnknownTargetDomain: HL7ErrorCode.UnknownKeyIdentifier,
    MpiErrorKind.InvalidMerge: HL7ErrorCode.DuplicateKeyIdentifier,
    MpiErrorKind.Conflict: HL7ErrorCode.DuplicateKeyIdentifier,
    MpiErrorKind.MissingIdentifier: HL7ErrorCode.RequiredFieldMissing,
}

_EVENT = "controlActProcess/subject/registrationEvent"
_PRIOR_ID = "replacementOf/priorRegistration/subject1/priorRegisteredRole/id"


class _Refused(Exception):
    def __init__(self, *details: AckDetail) -> None:
        super().__init__(details[0].text)
        self.details = details


@dataclass(frozen=True, slots=True)
class _Located:
    identifier: PatientIdentifier
    location: str


def patient_identity_feed(index: PatientIndex, message: etree._Element, interaction: str, *,
                          device_id: str) -> etree._Element:
    """Apply one ITI-44 message to ``index`` and return the MCCI_IN000002UV01 answer.

    AA when it was applied. AE, with nothing stored, when ``message`` is not valid against the
    schema of ``interaction`` (SYN details located by XPath) or when the index refuses it (HL7
    table 0357 details: 204 unknown domain or id, 205 links or merges refused, 101 missing id).
    """
    header = read_transmission(message)

    def ack(code: AcknowledgementType, details: Sequence[AckDetail] = ()) -> etree._Element:
        return build_ack(header, code, details, sender=device_id)

    issues = validate(message, interaction)
    if issues:
        log.info("%s refused, not schema-valid: %s", interaction, issues[0].message)
        _audit_failure(index, message, interaction, issues[0].message)
        return ack(AcknowledgementType.AE, syntax_details(issues))
    try:
        if interaction == Interaction.PRPA_IN201304UV02:
            _merge(index, message)
        else:
            _feed(index, message, interaction)
    except _Refused as refused:
        log.info("%s refused: %s", interaction, refused)
        _audit_failure(index, message, interaction, str(refused))
        return ack(AcknowledgementType.AE, refused.details)
    except Exception as exc:
        _audit_failure(index, message, interaction, type(exc).__name__, Outcome.MAJOR_FAILURE)
        raise
    return ack(AcknowledgementType.AA)


def _cx_list(elements: Sequence[etree._Element]) -> list[str]:
    found = [read_ii(el) for el in elements]
    return [PatientIdentifier(ii.root, ii.extension).cx for ii in found
            if ii.root is not None and ii.extension is not None]


def _audit_failure(index: PatientIndex, message: etree._Element, interaction: str, text: str,
                   outcome: Outcome = Outcome.SERIOUS_FAILURE) -> None:
    settings = index.settings

    def build() -> list[AuditEvent]:
        patients = _cx_list(find_all(message, _EVENT + "/subject1/patient/id"))
        if interaction == Interaction.PRPA_IN201304UV02:
            prior = _cx_list(find_all(message, _EVENT + "/" + _PRIOR_ID))
            return merge_events(settings, "ITI-44", patients[0] if patients else "",
                                prior[0] if prior else "", outcome, description=text)
        action = Action.CREATE if interaction == Interaction.PRPA_IN201301UV02 else Action.UPDATE
        return [feed_event(settings, "ITI-44", action, patients, outcome, description=text)]

    record_after(index.engine, settings, build)


def mpi_error_detail(error: MpiError, location: str | None) -> AckDetail:
    """The acknowledgementDetail for ``error`` at ``location`` (HL7 table 0357 code)."""
    return AckDetail(code=MPI_ERROR_CODES[error.kind], code_system=HL7_ERROR_CODE_SYSTEM,
                     text=error.text, location=location)


def _feed(index: PatientIndex, message: etree._Element, interaction: str) -> None:
    patient = _patient(message)
    ids = [_identifier(el, message) for el in find_all(patient, "id")]
    for other in find_all(patient, "patientPerson/asOtherIDs"):
        ids += [_identifier(el, message) for el in find_all(other, "id")]
    settings = index.settings
    action = Action.CREATE if interaction == Interaction.PRPA_IN201301UV02 else Action.UPDATE

    def audit(conn: Connection, _person: Person) -> None:
        record_in(conn, settings, lambda: feed_event(
            settings, "ITI-44", action, [i.identifier.cx for i in ids], Outcome.SUCCESS))

    try:
        index.feed([i.identifier for i in ids], read_demographics(patient), audit=audit)
    except MpiError as exc:
        where = [ids[p].location for p in exc.positions if p < len(ids)]
        raise _Refused(*[mpi_error_detail(exc, w)
                         for w in where or [location_of(patient, message)]]) from None


def _merge(index: PatientIndex, message: etree._Element) -> None:
    patient = _patient(message)
    event = find(message, _EVENT)
    assert event is not None  # _patient found the patient in it
    surviving = _one(find_all(patient, "id"), message, location_of(patient, message) + "/id")
    prior_path = location_of(event, message) + "/" + _PRIOR_ID
    subsumed = _one(find_all(event, _PRIOR_ID), message, prior_path)
    settings = index.settings

    def audit(conn: Connection, _person: Person) -> None:
        record_in(conn, settings, lambda: merge_events(
            settings, "ITI-44", surviving.identifier.cx, subsumed.identifier.cx,
            Outcome.SUCCESS))

    try:
        index.merge(surviving.identifier, subsumed.identifier, read_demographics(patient),
                    audit=audit)
    except MpiError as exc:
        where = surviving if exc.kind == MpiErrorKind.UnknownDomain else subsumed
        raise _Refused(mpi_error_detail(exc, where.location)) from None


def _patient(message: etree._Element) -> etree._Element:
    subjects = find_all(message, "controlActProcess/subject")
    if len(subjects) > 1:
        raise _Refused(AckDetail(
            code=AcknowledgementDetailCode.SYN110, code_system=ACK_DETAIL_CODE_SYSTEM,
            text="one registration event per ITI-44 message",
            location=location_of(subjects[1], message)))
    patient = find(message, _EVENT + "/subject1/patient")
    assert patient is not None  # the schema requires it
    return patient


def _one(elements: list[etree._Element], message: etree._Element, path: str) -> _Located:
    if not elements:
        raise _Refused(AckDetail(
            code=AcknowledgementDetailCode.SYN105, code_system=ACK_DETAIL_CODE_SYSTEM,
            text="a merge names one surviving and one subsumed patient id", location=path))
    if len(elements) > 1:
        raise _Refused(AckDetail(
            code=AcknowledgementDetailCode.SYN110, code_system=ACK_DETAIL_CODE_SYSTEM,
            text="a merge names one surviving and one subsumed patient id",
            location=location_of(elements[1], message)))
    return _identifier(elements[0], message)


def _identifier(el: etree._Element, message: etree._Element) -> _Located:
    ii = read_ii(el)
    where = location_of(el, message)
    if ii.root is None or ii.extension is None:
        raise _Refused(AckDetail(
            code=HL7ErrorCode.RequiredFieldMissing, code_system=HL7_ERROR_CODE_SYSTEM,
            text="a patient id needs @root (assigning authority) and @extension", location=where))
    return _Located(PatientIdentifier(ii.root, ii.extension), where)


def read_demographics(patient: etree._Element) -> Demographics:
    """The demographics of a ``patient`` role: name, sex, birth time, address, phone and
    mother's maiden name (``personalRelationship`` MTH) of its ``patientPerson``."""
    person = find(patient, "patientPerson")
    if person is None:
        return Demographics()
    family = given = None
    name = find(person, "name")
    if name is not None:
        family, given = read_pn(name)
    gender = find(person, "administrativeGenderCode")
    birth = find(person, "birthTime")
    addr = find(person, "addr")
    if addr is None:
        addr = find(patient, "addr")
    tel = find(person, "telecom")
    if tel is None:
        tel = find(patient, "telecom")
    return Demographics(
        family=family, given=given,
        birth_date=_date(birth.get("value")) if birth is not None else None,
        sex=(gender.get("code") or None) if gender is not None else None,
        address=read_ad(addr) if addr is not None else None,
        phone=read_tel(tel) if tel is not None else None,
        mothers_maiden_name=_mothers_maiden_name(person))


def _date(value: str | None) -> str | None:
    # TS is YYYYMMDDHHMMSS.UUUU[+|-ZZzz]; the index keeps up to the seconds.
    digits = re.match(r"\d+", value or "")
    return digits.group()[:14] if digits else None


def _mothers_maiden_name(person: etree._Element) -> str | None:
    for relationship in find_all(person, "personalRelationship"):
        code = find(relationship, "code")
        name = find(relationship, "relationshipHolder1/name")
        if code is not None and code.get("code") == "MTH" and name is not None:
            return read_pn(name)[0]
    return None
