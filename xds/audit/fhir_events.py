"""Audit events of the FHIR facade: searches and reads (Query E, the query string as the query:
ITI-67 DocumentReference, ITI-66 List, ITI-78 Patient, ITI-83 PIXm, ImagingStudy), ITI-68
Binary (Export R) and ITI-65 (Import C). The HTTP status decides the outcome."""

from __future__ import annotations

from xds.audit.events import Action, AuditEvent, CodedValue, EventId, Outcome, ParticipantObject
from xds.audit.transactions import (
    document_object, patient_object, purpose_of_use, query_object, server_participants,
    submission_set_object, transaction,
)
from xds.config import Settings

__all__ = ["http_outcome", "fhir_query_event", "binary_event", "bundle_event", "cx_of_token"]

#: EventTypeCode of a FHIR interaction that is no IHE transaction (ImagingStudy).
_RESTFUL = "http://hl7.org/fhir/restful-interaction"
_RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"


def http_outcome(status: int) -> Outcome:
    """0 for 1xx-3xx, 8 for a client error (4xx), 12 for a server error."""
    if status < 400:
        return Outcome.SUCCESS
    return Outcome.SERIOUS_FAILURE if status < 500 else Outcome.MAJOR_FAILURE


def cx_of_token(token: str) -> str:
    """A patient CX of a FHIR token (``urn:oid:1.2.3|A1`` -> ``A1^^^&1.2.3&ISO``); the value as
    given when it names no OID system (a reference, a bare id)."""
    system, sep, value = token.partition("|")
    if sep and system.startswith("urn:oid:") and value:
        return f"{value}^^^&{system[len('urn:oid:'):]}&ISO"
    return value if sep else token


def fhir_query_event(settings: Settings, code: str | None, resource_type: str, query: str,
                     status: int, *, patient: str = "", interaction: str = "search-type"
                     ) -> AuditEvent:
    """A search or read answered: Query E; ``code`` the IHE transaction (None: the FHIR
    ``interaction`` is the EventTypeCode), ``query`` the query string (or the path of a read)."""
    objects: list[ParticipantObject] = [patient_object(patient)] if patient else []
    if code is not None:
        event_type = transaction(code)
        objects.append(query_object(code, resource_type, query.encode("utf-8")))
    else:
        event_type = CodedValue(interaction, _RESTFUL, interaction)
        objects.append(ParticipantObject(
            object_id=resource_type, type_code=2, role=24,
            id_type=CodedValue(resource_type, _RESOURCE_TYPES, resource_type),
            query=query.encode("utf-8"), details=(("QueryEncoding", "UTF-8"),)))
    return AuditEvent(EventId.QUERY, Action.EXECUTE, http_outcome(status), event_type,
                      participants=server_participants(settings), objects=tuple(objects),
                      purpose_of_use=purpose_of_use(), description=_status(status))


def binary_event(settings: Settings, resource_id: str, status: int) -> AuditEvent:
    """ITI-68 Binary read: Export R, this node the source (IPF's retrieve convention), the
    document by its DocumentEntry id with the repository's unique id."""
    return AuditEvent(
        EventId.EXPORT, Action.READ, http_outcome(status), transaction("ITI-68"),
        participants=server_participants(settings, inverted=True),
        objects=(document_object(resource_id, settings.repository_unique_id),),
        purpose_of_use=purpose_of_use(), description=_status(status))


def bundle_event(settings: Settings, status: int, *, patient: str = "",
                 submission_set_uid: str = "") -> AuditEvent:
    """ITI-65 Provide Document Bundle received: Import C."""
    objects = [patient_object(patient)] if patient else []
    if submission_set_uid:
        objects.append(submission_set_object(submission_set_uid))
    return AuditEvent(
        EventId.IMPORT, Action.CREATE, http_outcome(status), transaction("ITI-65"),
        participants=server_participants(settings), objects=tuple(objects),
        purpose_of_use=purpose_of_use(), description=_status(status))


def _status(status: int) -> str:
    return "" if status < 400 else f"HTTP {status}"
