"""Audit events of the PIX Manager: ITI-8 / ITI-44 feeds (Patient Record C/U, a merge as D for
the subsumed id and U for the survivor), ITI-9 / ITI-45 queries, ITI-10 / ITI-46 notifications
sent (Patient Record R, this node the source). ``client``: the event of the initiating side (a
Patient Identity Source's feed, a PIX Consumer's query)."""

from __future__ import annotations

from collections.abc import Sequence

from xds.audit.events import Action, AuditEvent, EventId, Outcome
from xds.audit.transactions import (
    ClientSide, client_participants, participants_of, patient_object, purpose_of_use,
    query_object, server_participants, transaction,
)
from xds.config import Settings

__all__ = ["feed_event", "merge_events", "pix_query_event", "notification_event"]


def feed_event(settings: Settings, code: str, action: Action, patients: Sequence[str],
               outcome: Outcome, *, control_id: str = "", description: str = "",
               client: ClientSide | None = None) -> AuditEvent:
    """A feed received, or sent with ``client`` (ITI-8 A01/A04/A05 C, A08 U; ITI-44 add C,
    revise U): one patient object per identifier (CX); HL7 v2 adds the MSH-10 control id."""
    return AuditEvent(
        EventId.PATIENT_RECORD, action, outcome, transaction(code),
        participants=participants_of(settings, client),
        objects=tuple(patient_object(cx, control_id=control_id) for cx in patients),
        purpose_of_use=purpose_of_use(), description=description)


def merge_events(settings: Settings, code: str, surviving: str, subsumed: str, outcome: Outcome,
                 *, control_id: str = "", description: str = "",
                 client: ClientSide | None = None) -> list[AuditEvent]:
    """A merge received, or sent with ``client`` (ITI-8 A40, ITI-44 PRPA_IN201304UV02): Delete
    of the subsumed id, then Update of the surviving one (IPF; digest §6 item 32)."""
    return [feed_event(settings, code, Action.DELETE, [subsumed], outcome, control_id=control_id,
                       description=description, client=client),
            feed_event(settings, code, Action.UPDATE, [surviving], outcome,
                       control_id=control_id, description=description, client=client)]


def pix_query_event(settings: Settings, code: str, patient: str, query_id: str, query: bytes,
                    outcome: Outcome, *, control_id: str = "", description: str = "",
                    anonymous: str | None = None, client: ClientSide | None = None
                    ) -> AuditEvent:
    """A PIX query answered, or asked with ``client`` (ITI-9 QPD, ITI-45 queryByParameter,
    ITI-83 query string): Query E, the queried patient and the query."""
    details = [("MSH-10", control_id)] if control_id else []
    objects = [patient_object(patient)] if patient else []
    objects.append(query_object(code, query_id, query, details=details))
    if client is not None:
        participants = participants_of(settings, client)
    elif anonymous is None:
        participants = server_participants(settings)
    else:
        participants = server_participants(settings, anonymous=anonymous)
    return AuditEvent(EventId.QUERY, Action.EXECUTE, outcome, transaction(code),
                      participants=participants, objects=tuple(objects),
                      purpose_of_use=purpose_of_use(), description=description)


def notification_event(settings: Settings, code: str, url: str, patients: Sequence[str],
                       outcome: Outcome, *, description: str = "") -> AuditEvent:
    """A PIX Update Notification sent (ITI-10 / ITI-46): Patient Record R from this node to
    the consumer ``url``, one patient object per identifier of the person."""
    return AuditEvent(
        EventId.PATIENT_RECORD, Action.READ, outcome, transaction(code),
        participants=client_participants(settings, settings.base_url + "/pix", url),
        objects=tuple(patient_object(cx) for cx in patients), description=description)
