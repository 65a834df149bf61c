"""ITI-9 PIX Query (QBP^Q23 -> RSP^K23, HL7 v2.5), PIX Manager side (ITI TF-2a §3.9)."""

from __future__ import annotations

from typing import Any

from xds.audit.events import AuditEvent, Outcome
from xds.audit.pix_events import pix_query_event
from xds.audit.transactions import record_after
from xds.hl7 import (
    AckCode,
    ErrorCode,
    Header,
    HL7Error,
    Location,
    build_err,
    format_cx,
    read_cx,
    read_cx_list,
    reply_msh,
    require_version,
    segment,
    segments,
)
from xds.mpi.index import PatientIndex
from xds.mpi.model import MpiError, MpiErrorKind, PatientIdentifier

__all__ = ["VERSIONS", "handle"]

VERSIONS = ("2.5",)
_RSP_K23 = ("RSP", "K23", "RSP_K23")


def handle(message: Any, header: Header, index: PatientIndex) -> str:
    """The RSP^K23 answering one QBP^Q23 (ITI TF-2a §3.9.4.2.2.6):

    ============================================  =====  =====  ==========================
    case                                          MSA-1  QAK-2  ERR-2 (ERR-3 = 204)
    ============================================  =====  =====  ==========================
    known id, linked ids in the requested domains AA     OK     -- (PID-3 = those ids)
    known id, none in the requested domains       AA     NF     --
    QPD-3 domain known, id unknown                AE     AE     ``QPD^1^3^1^1``
    QPD-3 assigning authority not recognised      AE     AE     ``QPD^1^3^1^4``
    a QPD-4 domain not recognised                 AE     AE     ``QPD^1^4^<rep>`` for each
    ============================================  =====  =====  ==========================

    Raises HL7Error (answered with an ACK) for a wrong version (AR 203) or no QPD (AE 100).
    Every answer is audited (Query E with the QPD as the query).
    """
    try:
        answer, ok = _handle(message, header, index)
    except HL7Error as exc:
        _audit(message, header, index, Outcome.SERIOUS_FAILURE, exc.text)
        raise
    except Exception as exc:
        _audit(message, header, index, Outcome.MAJOR_FAILURE, type(exc).__name__)
        raise
    _audit(message, header, index, Outcome.SUCCESS if ok else Outcome.SERIOUS_FAILURE)
    return answer


def _audit(message: Any, header: Header, index: PatientIndex, outcome: Outcome,
           text: str = "") -> None:
    settings = index.settings

    def build() -> AuditEvent:
        qpd = segments(message, "QPD")
        cx = read_cx(qpd[0], 3) if qpd else None
        patient = PatientIdentifier(cx.oid, cx.id_number).cx if cx and cx.oid else ""
        return pix_query_event(
            settings, "ITI-9", patient, str(qpd[0][2]) if qpd and len(qpd[0]) > 2 else "",
            str(qpd[0]).encode("utf-8") if qpd else b"", outcome,
            control_id=header.control_id, description=text)

    record_after(index.engine, settings, build)


def _handle(message: Any, header: Header, index: PatientIndex) -> tuple[str, bool]:
    """The answer and whether it is AA."""
    require_version(header, VERSIONS)
    if not segments(message, "QPD"):
        raise HL7Error(ErrorCode.SegmentSequenceError, "QBP Q23 requires a QPD segment",
                       [Location("QPD")])
    qpd = segments(message, "QPD")[0]
    try:
        source, targets = _read_query(qpd)
        found = index.query(source, [oid for _, oid in targets])
    except HL7Error as exc:
        return _response(header, qpd, AckCode.AE, "AE", error=exc), False
    except MpiError as exc:
        return _response(header, qpd, AckCode.AE, "AE", error=_query_error(exc, targets)), False
    if any(oid == source.domain for _, oid in targets):
        # Only when its domain is asked for explicitly (ITI TF-2a §3.9.4.2.2.6; MESA sample).
        found = [source, *found]
    return _response(header, qpd, AckCode.AA, "OK" if found else "NF", found=found), True


def _read_query(qpd: Any) -> tuple[PatientIdentifier, list[tuple[int, str]]]:
    """QPD-3 (the one person identifier) and the QPD-4 target domains with their repetition
    numbers. Raises HL7Error 101/204 for QPD-3 without id or assigning authority, 204 for
    QPD-4 repetitions without an OID (``^^^NS&OID&ISO``)."""
    cx = read_cx(qpd, 3)
    if not cx.id_number and not (cx.namespace_id or cx.universal_id):
        raise HL7Error(ErrorCode.RequiredFieldMissing, "QPD-3 (person identifier) is empty",
                       [Location("QPD", 1, 3)])
    if cx.oid is None:
        raise HL7Error(ErrorCode.UnknownKeyIdentifier, "QPD-3 assigning authority is not an "
                       "OID (CX-4.2, CX-4.3 = ISO)", [Location("QPD", 1, 3, 1, 4)])
    if not cx.id_number:
        raise HL7Error(ErrorCode.RequiredFieldMissing, "QPD-3 has no ID number",
                       [Location("QPD", 1, 3, 1, 1)])
    targets: list[tuple[int, str]] = []
    bad: list[int] = []
    for rep, domain in read_cx_list(qpd, 4):
        if domain.oid is not None:
            targets.append((rep, domain.oid))
        elif domain.namespace_id or domain.universal_id:
            bad.append(rep)
    if bad:
        raise HL7Error(ErrorCode.UnknownKeyIdentifier, "QPD-4 domains must be OIDs (CX-4.2, CX-4.3 = ISO)",
                       [Location("QPD", 1, 4, rep) for rep in bad])
    return PatientIdentifier(cx.oid, cx.id_number), targets


def _query_error(exc: MpiError, targets: list[tuple[int, str]]) -> HL7Error:
    if exc.kind is MpiErrorKind.UnknownDomain:
        return HL7Error(ErrorCode.UnknownKeyIdentifier, exc.text, [Location("QPD", 1, 3, 1, 4)])
    if exc.kind is MpiErrorKind.UnknownTargetDomain:
        return HL7Error(ErrorCode.UnknownKeyIdentifier, exc.text,
                        [Location("QPD", 1, 4, targets[p][0]) for p in exc.positions])
    return HL7Error(ErrorCode.UnknownKeyIdentifier, exc.text, [Location("QPD", 1, 3, 1, 1)])


def _response(header: Header, qpd: Any, ack: AckCode, status: str, *,
              error: HL7Error | None = None, found: list[PatientIdentifier] | None = None) -> str:
    """MSH, MSA, [ERR], QAK (QPD-2 query tag, status), QPD as received, [PID]."""
    context = header.context
    seps = str(context.separators)
    out = [reply_msh(header, _RSP_K23), segment(context, "MSA", ack.value, header.control_id)]
    if error is not None:
        out.append(build_err(context, error))
    out.append(segment(context, "QAK", str(qpd[2]) if len(qpd) > 2 else "", status))
    out.append(str(qpd))
    if found:
        # PID-5 "~^^^^^^S": an empty name, then one of name type S (MESA/IPF convention).
        out.append(segment(context, "PID", "", "",
                           seps[2].join(format_cx(i.value, i.domain, context) for i in found),
                           "", seps[2] + seps[3] * 6 + "S"))
    return "\r".join(out) + "\r"
