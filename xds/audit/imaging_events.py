"""Audit events of the Imaging Document Source: RAD-69 / WADO (RAD-55) / WADO-RS (RAD-107)
retrieves (DICOM Instances Transferred R, one event per outcome; on the Imaging Document
Consumer, ``client``: DICOM Instances Accessed C), C-STORE intake (Instances Transferred C from
the modality) and RAD-68 publication (Export R to the repository)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xds.audit.events import Action, AuditEvent, EventId, Outcome, ParticipantObject
from xds.audit.transactions import (
    ClientSide, client_participants, participants_of, patient_object, purpose_of_use,
    server_participants, study_object, submission_set_object, transaction,
)
from xds.config import Settings

__all__ = ["InstanceRef", "transferred_events", "stored_event", "publish_event"]


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """One SOP Instance an event is about, with what is known of it."""

    study_uid: str
    series_uid: str = ""
    sop_uid: str = ""
    #: The patient's CX (``id^^^&issuer&ISO``), "" when unknown.
    patient: str = ""
    repository_id: str = ""
    home: str = ""


def _objects(instances: Sequence[InstanceRef]) -> tuple[ParticipantObject, ...]:
    patients = dict.fromkeys(i.patient for i in instances if i.patient)
    return (*(patient_object(p) for p in patients),
            *(study_object(i.study_uid, sop_uid=i.sop_uid, series_uid=i.series_uid,
                           repository_id=i.repository_id, home=i.home)
              for i in instances if i.study_uid))


def transferred_events(settings: Settings, code: str, delivered: Sequence[InstanceRef],
                       failed: Sequence[InstanceRef], *, description: str = "",
                       client: ClientSide | None = None) -> list[AuditEvent]:
    """Instances sent to the requestor (RAD-69, RAD-55, RAD-107): DICOM Instances Transferred
    R, this node the source; a success event with the delivered instances and a failure event
    with the others (both for a partial answer); a request for nothing found gets one failure
    event without instances. With ``client`` the consumer's events: DICOM Instances Accessed C,
    the called source the source."""
    event_id, action = (EventId.INSTANCES_TRANSFERRED, Action.READ) if client is None else \
        (EventId.INSTANCES_ACCESSED, Action.CREATE)
    groups: list[tuple[Sequence[InstanceRef], Outcome]] = [
        (docs, outcome) for docs, outcome in ((delivered, Outcome.SUCCESS),
                                              (failed, Outcome.SERIOUS_FAILURE)) if docs]
    return [AuditEvent(
        event_id, action, outcome, transaction(code),
        participants=participants_of(settings, client, inverted=True), objects=_objects(docs),
        purpose_of_use=purpose_of_use(),
        description="" if outcome is Outcome.SUCCESS else description)
        for docs, outcome in groups or [((), Outcome.SERIOUS_FAILURE)]]


def stored_event(settings: Settings, instance: InstanceRef, outcome: Outcome, *,
                 description: str = "") -> AuditEvent:
    """An instance received by the C-STORE SCP: DICOM Instances Transferred C, the calling
    AE the source (``REQUEST``: its title and address), this AE the destination."""
    return AuditEvent(
        EventId.INSTANCES_TRANSFERRED, Action.CREATE, outcome, transaction("RAD-8"),
        participants=server_participants(settings, our_id=settings.dicom_ae_title),
        objects=_objects([instance]), description=description)


def publish_event(settings: Settings, url: str, patient: str, submission_set_uid: str,
                  outcome: Outcome, *, description: str = "") -> AuditEvent:
    """A manifest sent (RAD-68): Export R from this Imaging Document Source to ``url``."""
    objects = [patient_object(patient)] if patient else []
    if submission_set_uid:
        objects.append(submission_set_object(submission_set_uid))
    return AuditEvent(
        EventId.EXPORT, Action.READ, outcome, transaction("RAD-68"),
        participants=client_participants(settings, settings.base_url + "/xds/imaging", url),
        objects=tuple(objects), description=description)
