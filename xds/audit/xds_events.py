"""Audit events of the XDS.b transactions: ITI-18/51 query, ITI-41/42 submissions (import on the
receiving side, export on the sending side), ITI-43 retrieve (one event per outcome; export on
the repository, import on the consumer). ``client``: the event of the initiating side."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from xds.audit.events import Action, AuditEvent, EventId, Outcome, ParticipantObject
from xds.audit.transactions import (
    ClientSide, client_participants, document_object, participants_of, patient_object,
    purpose_of_use, query_object, server_participants, submission_set_object, transaction,
)
from xds.config import Settings
from xds.ebrim.rim import RIM, Element
from xds.ebrim.vocabulary import SS
from xds.model.errors import RegistryError, Severity

__all__ = ["outcome_of", "stored_query_event", "submission_ids", "import_event",
           "export_event", "retrieve_events"]


def outcome_of(errors: Sequence[RegistryError]) -> Outcome:
    """0 without errors, 8 if one is an error, 4 for warnings only (IPF)."""
    if not errors:
        return Outcome.SUCCESS
    if any(e.severity is Severity.Error for e in errors):
        return Outcome.SERIOUS_FAILURE
    return Outcome.MINOR_FAILURE


def _description(errors: Sequence[RegistryError]) -> str:
    return "; ".join(f"{e.code} {e.context}".strip() for e in errors)[:1000]


def _unquoted(text: str) -> str:
    return text.strip().strip("()").strip().strip("'")


def stored_query_event(settings: Settings, body: Element, outcome: Outcome, *,
                       multi_patient: bool = False, description: str = "",
                       client: ClientSide | None = None) -> AuditEvent:
    """ITI-18 (ITI-51) on the registry, or on the consumer with ``client``: Query E; the
    patient of a ``...PatientId`` parameter, the query (id = the stored query id,
    ParticipantObjectQuery = the rim:AdhocQuery)."""
    code = "ITI-51" if multi_patient else "ITI-18"
    adhoc = body.find(f"{RIM}AdhocQuery")
    query_id = adhoc.get("id", "") if adhoc is not None else ""
    home = adhoc.get("home", "") if adhoc is not None else ""
    objects: list[ParticipantObject] = []
    if adhoc is not None and not multi_patient:
        for slot in adhoc.iterfind(f"{RIM}Slot"):
            if (slot.get("name") or "").lower().endswith("patientid"):
                value = slot.findtext(f"{RIM}ValueList/{RIM}Value") or ""
                if _unquoted(value):
                    objects.append(patient_object(_unquoted(value)))
                    break
    request = etree.tostring(adhoc if adhoc is not None else body, encoding="utf-8")
    details = [("urn:ihe:iti:xca:2010:homeCommunityId", home)] if home else []
    objects.append(query_object(code, query_id, request, details=details))
    return AuditEvent(EventId.QUERY, Action.EXECUTE, outcome, transaction(code),
                      participants=participants_of(settings, client), objects=tuple(objects),
                      purpose_of_use=purpose_of_use(), description=description)


def submission_ids(submit_objects_request: Element) -> tuple[str, str]:
    """(SubmissionSet uniqueId, patientId) of a lcm:SubmitObjectsRequest, "" when absent."""
    unique_id = patient_id = ""
    for package in submit_objects_request.iterfind(f"{RIM}RegistryObjectList/{RIM}RegistryPackage"):
        for ei in package.iterchildren(f"{RIM}ExternalIdentifier"):
            scheme = ei.get("identificationScheme")
            if scheme == SS.uniqueId:
                unique_id = ei.get("value") or ""
            elif scheme == SS.patientId:
                patient_id = ei.get("value") or ""
        if unique_id:
            break
    return unique_id, patient_id


def _submission_objects(submit_objects_request: Element) -> tuple[ParticipantObject, ...]:
    unique_id, patient_id = submission_ids(submit_objects_request)
    objects = [patient_object(patient_id)] if patient_id else []
    if unique_id:
        objects.append(submission_set_object(unique_id))
    return tuple(objects)


def import_event(settings: Settings, code: str, submit_objects_request: Element,
                 errors: Sequence[RegistryError] = (), *, outcome: Outcome | None = None,
                 description: str = "") -> AuditEvent:
    """A received submission (ITI-41 on the repository, ITI-42 on the registry): Import C."""
    return AuditEvent(
        EventId.IMPORT, Action.CREATE, outcome_of(errors) if outcome is None else outcome,
        transaction(code), participants=server_participants(settings),
        objects=_submission_objects(submit_objects_request), purpose_of_use=purpose_of_use(),
        description=description or _description(errors))


def export_event(settings: Settings, code: str, submit_objects_request: Element, our_id: str,
                 url: str, errors: Sequence[RegistryError] = (), *,
                 outcome: Outcome | None = None, description: str = "") -> AuditEvent:
    """A submission sent (ITI-42 repository -> registry, RAD-68): Export R, we are the source."""
    return AuditEvent(
        EventId.EXPORT, Action.READ, outcome_of(errors) if outcome is None else outcome,
        transaction(code), participants=client_participants(settings, our_id, url),
        objects=_submission_objects(submit_objects_request), purpose_of_use=purpose_of_use(),
        description=description or _description(errors))


def retrieve_events(settings: Settings, delivered: Sequence[tuple[str, str, str | None]],
                    failed: Sequence[tuple[str, str, str | None]],
                    errors: Sequence[RegistryError] = (), *, client: ClientSide | None = None,
                    description: str = "") -> list[AuditEvent]:
    """ITI-43 on the repository: Export R with this node as the source; one event with the
    delivered documents (success) and one with the others (failure), each (documentUniqueId,
    repositoryUniqueId, homeCommunityId) -- both for a PartialSuccess (ITI18-27, IPF); a
    request that named no document gets one failure event without documents. With ``client``
    the consumer's events: Import C, the repository the source. ``description`` explains the
    failure when ``errors`` do not (the repository could not be reached)."""
    event_id, action = (EventId.EXPORT, Action.READ) if client is None else \
        (EventId.IMPORT, Action.CREATE)
    why = description or _description(errors)
    events = []
    groups = ((delivered, Outcome.SUCCESS), (failed, Outcome.SERIOUS_FAILURE))
    for docs, outcome in groups if delivered or failed else (((), Outcome.SERIOUS_FAILURE),):
        if not docs and (delivered or failed):
            continue
        events.append(AuditEvent(
            event_id, action, outcome, transaction("ITI-43"),
            participants=participants_of(settings, client, inverted=True),
            objects=tuple(document_object(uid, repo, home) for uid, repo, home in docs),
            purpose_of_use=purpose_of_use(),
            description="" if outcome is Outcome.SUCCESS else why))
    return events
