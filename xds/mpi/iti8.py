"""ITI-8 Patient Identity Feed (HL7 v2 ADT A01/A04/A05/A08/A40), PIX Manager side (ITI TF-2a §3.8)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from xds.audit.events import Action, AuditEvent, Outcome
from xds.audit.pix_events import feed_event, merge_events
from xds.audit.transactions import record_after, record_in
from xds.hl7 import (
    DEFAULT_CONTEXT,
    AckCode,
    ErrorCode,
    Header,
    HL7Error,
    Location,
    build_ack,
    escape,
    read_cx_list,
    repetitions,
    require_version,
    segments,
    value,
)
from xds.mpi.index import PatientIndex
from xds.mpi.model import Demographics, MpiError, MpiErrorKind, PatientIdentifier, Person
from xds.model.values import is_dtm

__all__ = ["TRIGGERS", "VERSIONS", "handle", "read_identifiers", "read_demographics"]

#: ITI-8 accepts v2.3.1 (the TF's version) and v2.5 (what most sources send today).
VERSIONS = ("2.3.1", "2.5")
#: Trigger events (MSH-9.2) and the segments each requires (HL7 v2.3.1 ADT_A01 / ADT_A39).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "A01": ("EVN", "PID", "PV1"), "A04": ("EVN", "PID", "PV1"), "A05": ("EVN", "PID", "PV1"),
    "A08": ("EVN", "PID", "PV1"), "A40": ("EVN", "PID", "MRG"),
}
TRIGGERS = frozenset(_REQUIRED)
#: EventActionCode of a feed by trigger (digest §5.1); A40 is recorded as Delete + Update.
_ACTIONS = {"A01": Action.CREATE, "A04": Action.CREATE, "A05": Action.CREATE,
            "A08": Action.UPDATE}

_SEX = frozenset("FMOUAN")  # HL7 table 0001 Administrative Sex
_MAX_VALUE = 256  # the widest mpi_identifier column but address
_MAX_OID = 64
_NULL = '""'  # HL7's explicit null; the MPI keeps what it had


def handle(message: Any, header: Header, index: PatientIndex) -> str:
    """The ACK for one ADT message: feed (A01/A04/A05/A08) or merge (A40) into ``index``.

    Raises HL7Error (the boundary answers it): AR 203 wrong version, 100 missing segment,
    101 no PID-3 id with an OID assigning authority, 204 unknown domain or identifier,
    205 invalid merge, 102/103 bad demographics. Audited (Patient Record) either way: a change
    inside its transaction, a refusal after it.
    """
    try:
        return _handle(message, header, index)
    except HL7Error as exc:
        _audit_failure(message, header, index, Outcome.SERIOUS_FAILURE, exc.text)
        raise
    except Exception as exc:
        _audit_failure(message, header, index, Outcome.MAJOR_FAILURE, type(exc).__name__)
        raise


def _ids_of(segment: Any, name: str, field: int) -> list[str]:
    return [i.cx for _, i in read_identifiers(segment, name, field)]


def _audit_failure(message: Any, header: Header, index: PatientIndex, outcome: Outcome,
                   text: str) -> None:
    settings = index.settings
    control = header.control_id

    def build() -> list[AuditEvent]:
        pid = segments(message, "PID")
        patients = _ids_of(pid[0], "PID", 3) if pid else []
        if header.trigger_event == "A40":
            mrg = segments(message, "MRG")
            prior = _ids_of(mrg[0], "MRG", 1) if mrg else []
            return merge_events(settings, "ITI-8", patients[0] if patients else "",
                                prior[0] if prior else "", outcome, control_id=control,
                                description=text)
        return [feed_event(settings, "ITI-8", _ACTIONS.get(header.trigger_event, Action.CREATE),
                           patients, outcome, control_id=control, description=text)]

    record_after(index.engine, settings, build)


def _handle(message: Any, header: Header, index: PatientIndex) -> str:
    require_version(header, VERSIONS)
    trigger = header.trigger_event
    if trigger not in _REQUIRED:
        raise HL7Error(ErrorCode.UnsupportedEventCode, f"ADT {trigger} is not an ITI-8 event",
                       [Location("MSH", 1, 9, 1, 2)], ack=AckCode.AR)
    for name in _REQUIRED[trigger]:
        if not segments(message, name):
            raise HL7Error(ErrorCode.SegmentSequenceError,
                           f"ADT^{trigger} requires a {name} segment", [Location(name)])
    pid = segments(message, "PID")[0]
    demographics = read_demographics(pid)
    if trigger == "A40":
        _merge(message, pid, demographics, index, header.control_id)
    else:
        _feed(pid, demographics, index, header)
    return build_ack(header, AckCode.AA)


def _feed(pid: Any, demographics: Demographics, index: PatientIndex, header: Header) -> None:
    ids = read_identifiers(pid, "PID", 3)
    if not ids:
        raise HL7Error(ErrorCode.RequiredFieldMissing, "PID-3 holds no patient identifier with an "
                       "OID assigning authority (CX-4.2, CX-4.3 = ISO)", [Location("PID", 1, 3)])
    settings = index.settings

    def audit(conn: Connection, _person: Person) -> None:
        record_in(conn, settings, lambda: feed_event(
            settings, "ITI-8", _ACTIONS[header.trigger_event], [i.cx for _, i in ids],
            Outcome.SUCCESS, control_id=header.control_id))

    try:
        index.feed([i for _, i in ids], demographics, audit=audit)
    except MpiError as exc:
        raise _feed_error(exc, [rep for rep, _ in ids]) from None


def _merge(message: Any, pid: Any, demographics: Demographics, index: PatientIndex,
           control_id: str) -> None:
    if len(segments(message, "MRG")) > 1:
        raise HL7Error(ErrorCode.SegmentSequenceError,
                       "one PID/MRG pair per A40 (send one message per merge)", [Location("MRG", 2)])
    prior = read_identifiers(segments(message, "MRG")[0], "MRG", 1)
    if not prior:
        raise HL7Error(ErrorCode.RequiredFieldMissing, "MRG-1 holds no patient identifier with "
                       "an OID assigning authority (CX-4.2, CX-4.3 = ISO)", [Location("MRG", 1, 1)])
    subsumed = prior[0][1]
    surviving = [(rep, i) for rep, i in read_identifiers(pid, "PID", 3) if i.domain == subsumed.domain]
    if not surviving:
        raise HL7Error(ErrorCode.RequiredFieldMissing, "PID-3 holds no identifier of MRG-1's "
                       f"assigning authority {subsumed.domain}", [Location("PID", 1, 3)])
    rep, survivor = surviving[0]
    if survivor == subsumed:
        # dcm4chee #1086: accepting it makes a circular merge.
        raise HL7Error(ErrorCode.DuplicateKeyIdentifier, "MRG-1 matches PID-3",
                       [Location("MRG", 1, 1)])
    settings = index.settings

    def audit(conn: Connection, _person: Person) -> None:
        record_in(conn, settings, lambda: merge_events(
            settings, "ITI-8", survivor.cx, subsumed.cx, Outcome.SUCCESS, control_id=control_id))

    try:
        index.merge(survivor, subsumed, demographics, audit=audit)
    except MpiError as exc:
        if exc.kind is MpiErrorKind.UnknownDomain:
            raise HL7Error(ErrorCode.UnknownKeyIdentifier, exc.text,
                           [Location("PID", 1, 3, rep, 4)]) from None
        if exc.kind is MpiErrorKind.UnknownIdentifier:
            raise HL7Error(ErrorCode.UnknownKeyIdentifier, exc.text,
                           [Location("MRG", 1, 1)]) from None
        if exc.kind is MpiErrorKind.Conflict:
            raise HL7Error(ErrorCode.DuplicateKeyIdentifier, exc.text,
                           [Location("PID", 1, 3)]) from None
        raise HL7Error(ErrorCode.DuplicateKeyIdentifier, exc.text, [Location("MRG", 1, 1)]) from None


def _feed_error(exc: MpiError, reps: list[int]) -> HL7Error:
    if exc.kind is MpiErrorKind.UnknownDomain:
        return HL7Error(ErrorCode.UnknownKeyIdentifier, exc.text,
                        [Location("PID", 1, 3, reps[p], 4) for p in exc.positions]
                        or [Location("PID", 1, 3)])
    if exc.kind is MpiErrorKind.MissingIdentifier:
        return HL7Error(ErrorCode.RequiredFieldMissing, exc.text, [Location("PID", 1, 3)])
    if exc.kind is MpiErrorKind.UnknownIdentifier:  # an identifier that was merged away
        return HL7Error(ErrorCode.UnknownKeyIdentifier, exc.text, [Location("PID", 1, 3)])
    return HL7Error(ErrorCode.DuplicateKeyIdentifier, exc.text, [Location("PID", 1, 3)])


def read_identifiers(segment: Any, name: str, field: int) -> list[tuple[int, PatientIdentifier]]:
    """The CX repetitions of ``field`` that carry an id and an OID assigning authority
    (``ID^^^NS&OID&ISO``), with their repetition numbers; namespace-only ids are skipped,
    as the MPI keys domains by OID. Raises HL7Error 102 for values too long to keep."""
    found: list[tuple[int, PatientIdentifier]] = []
    for rep, cx in read_cx_list(segment, field):
        if not cx.id_number or cx.oid is None:
            continue
        if len(cx.id_number) > _MAX_VALUE or len(cx.oid) > _MAX_OID:
            raise HL7Error(ErrorCode.DataTypeError, f"{name}-{field} repetition {rep} is too long",
                           [Location(name, 1, field, rep)])
        found.append((rep, PatientIdentifier(cx.oid, cx.id_number)))
    return found


def read_demographics(pid: Any) -> Demographics:
    """PID-5 name (the legal one, else the first given), PID-7 birth date, PID-8 sex, PID-11
    address (first, as XAD with standard separators), PID-13 home phone, PID-6 mother's
    maiden name. Raises HL7Error 102 (bad date, too long) or 103 (sex not in table 0001)."""
    name = _name_repetition(pid, 5)
    birth = _given(value(pid, 7, 1, 1))
    if birth is not None and not is_dtm(birth):
        raise HL7Error(ErrorCode.DataTypeError, f"PID-7 {birth!r} is not a date",
                       [Location("PID", 1, 7)])
    sex = _given(value(pid, 8).upper())
    if sex is not None and sex not in _SEX:
        raise HL7Error(ErrorCode.TableValueNotFound, f"PID-8 {sex!r} is not in HL7 table 0001",
                       [Location("PID", 1, 8)])
    demographics = Demographics(
        family=_given(value(pid, 5, name, 1, 1)), given=_given(value(pid, 5, name, 2)),
        birth_date=re.sub(r"[.+-].*$", "", birth)[:14] if birth else None, sex=sex,
        address=_address(pid), phone=_phone(pid),
        mothers_maiden_name=_given(value(pid, 6, _name_repetition(pid, 6), 1, 1)))
    for field, number in (("family", 5), ("given", 5), ("phone", 13), ("mothers_maiden_name", 6)):
        text = getattr(demographics, field)
        if text is not None and len(text) > _MAX_VALUE:
            raise HL7Error(ErrorCode.DataTypeError, f"PID-{number} is too long",
                           [Location("PID", 1, number)])
    return demographics


def _given(text: str) -> str | None:
    text = text.strip()
    return None if not text or text == _NULL else text


def _name_repetition(pid: Any, field: int) -> int:
    """The XPN repetition to read: name type (XPN-7) L, else the first non-empty one; the
    ``~^^^^^^S`` convention of PIX leaves the first repetition empty."""
    reps = range(1, repetitions(pid, field) + 1)
    for rep in reps:
        if value(pid, field, rep, 7) == "L" and value(pid, field, rep, 1, 1):
            return rep
    return next((rep for rep in reps if value(pid, field, rep, 1, 1)), 1)


def _address(pid: Any) -> str | None:
    parts = [escape(value(pid, 11, 1, comp), DEFAULT_CONTEXT) for comp in range(1, 10)]
    text = "^".join(parts).rstrip("^")
    return None if not text.strip("^") or text == _NULL else text


def _phone(pid: Any) -> str | None:
    # XTN-1 (v2.3.1 formatted number), XTN-12 (v2.5 unformatted), or XTN-6/7 area + local.
    return (_given(value(pid, 13, 1, 1)) or _given(value(pid, 13, 1, 12))
            or _given(value(pid, 13, 1, 6) + value(pid, 13, 1, 7)))
