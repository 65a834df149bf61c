"""The shared shape of every transaction's audit event (digest §5.1, IPF conventions).

Participants: on the server side the source is the client (its wsa:ReplyTo / MSH-4|MSH-3 /
calling AE, else "anonymous", at its address) and the destination is this node (the endpoint
called, our process id, our host); on the client side the other way round. The XUA human
requestor and its PurposeOfUse come from ``REQUEST``. Participant objects: patient, submission
set, document, query, study. ``record_in`` / ``record_after`` are how the transactions hand
events over: a failure to *build* an event is logged and never fails the transaction.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from xds.audit import trail
from xds.audit.events import (
    REQUEST, ActiveParticipant, AuditEvent, CodedValue, ParticipantObject, RequestInfo, Role,
)
from xds.config import Settings

__all__ = [
    "ANONYMOUS", "transaction", "server_participants", "client_participants", "purpose_of_use",
    "patient_object", "submission_set_object", "document_object", "query_object",
    "study_object", "record_in", "record_after", "local_host", "Build", "rest_request",
    "with_request", "ClientSide", "participants_of",
]

log = logging.getLogger("xds.audit")

#: The WS-Addressing anonymous address: the source UserID of a SOAP client that named none.
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"

#: EventTypeCode display names ("IHE Transactions"), as IPF's event type enums name them.
_TRANSACTIONS = {
    "ITI-8": "Patient Identity Feed",
    "ITI-9": "PIX Query",
    "ITI-10": "PIX Update Notification",
    "ITI-18": "Registry Stored Query",
    "ITI-41": "Provide and Register Document Set-b",
    "ITI-42": "Register Document Set-b",
    "ITI-43": "Retrieve Document Set",
    "ITI-44": "Patient Identity Feed",
    "ITI-45": "PIX Query",
    "ITI-46": "PIX Update Notification",
    "ITI-51": "Multi-Patient Stored Query",
    "ITI-65": "Provide Document Bundle",
    "ITI-66": "Mobile Document Manifest Query",
    "ITI-67": "Mobile Document Reference Query",
    "ITI-68": "Mobile Document Retrieval",
    "ITI-78": "Mobile Patient Demographics Query",
    "ITI-83": "Mobile Patient Identifier Cross-reference Query",
    "RAD-8": "Modality Images Stored",
    "RAD-55": "WADO Retrieve",
    "RAD-68": "Provide and Register Imaging Document Set – MTOM/XOP",
    "RAD-69": "Retrieve Imaging Document Set",
    "RAD-107": "WADO-RS Retrieve",
}

_PATIENT_NUMBER = CodedValue("2", "RFC-3881", "Patient Number")
_REPORT_NUMBER = CodedValue("9", "RFC-3881", "Report Number")
_SUBMISSION_SET = CodedValue("urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd", "IHE XDS Metadata",
                             "submission set classificationNode")
_STUDY_UID = CodedValue("110180", "DCM", "Study Instance UID")

#: What a call site hands over: a function building the event(s), run inside a guard.
Build = Callable[[], AuditEvent | Iterable[AuditEvent]]


def transaction(code: str) -> CodedValue:
    """The EventTypeCode of transaction ``code`` (``ITI-18``)."""
    return CodedValue(code, "IHE Transactions", _TRANSACTIONS[code])


def local_host(settings: Settings) -> str:
    """This node's NetworkAccessPointID: the configured host, our host name for a wildcard."""
    host = settings.host
    return socket.gethostname() if host in ("", "0.0.0.0", "::") else host


def _host_of(url: str) -> str:
    """The host of a URL (``mllp://h:p``, ``https://h/p``); a bare host as it is."""
    if "://" not in url:
        return url
    return urlsplit(url).hostname or url


def _us(user_id: str, requestor: bool, role: Role, settings: Settings,
        endpoint: str = "") -> ActiveParticipant:
    host = _host_of(endpoint) if "://" in endpoint else ""
    return ActiveParticipant(user_id=user_id, requestor=requestor, roles=(role.value,),
                             network_id=host or local_host(settings),
                             alternative_user_id=str(os.getpid()))


def _humans(info: RequestInfo | None) -> tuple[ActiveParticipant, ...]:
    person = info.requestor if info is not None else None
    if person is None or not person.user_id:
        return ()
    # The audit schema has no organisation field: it goes into UserName, after the person's
    # name, as "Alice Smith (Clinic; urn:oid:1.2.3.4)".
    organization = "; ".join(p for p in (person.organization, person.organization_id) if p)
    name = f"{person.user_name} ({organization})" if organization else person.user_name
    return (ActiveParticipant(user_id=person.user_id, requestor=True, roles=person.roles,
                              user_name=name.strip()),)


def server_participants(settings: Settings, *, inverted: bool = False,
                        anonymous: str = ANONYMOUS, our_id: str = "",
                        info: RequestInfo | None = None) -> tuple[ActiveParticipant, ...]:
    """Client (source, the requestor) and this node (destination) of the request in
    ``REQUEST`` (or ``info``), then the XUA human requestor.

    ``inverted``: this node is the source of the data and the client its destination (ITI-43,
    RAD-69, WADO: IPF's retrieve convention); the client stays the requestor.
    ``anonymous``: the client's UserID when it declared no endpoint of its own; ``our_id``:
    this node's UserID when it is not the endpoint called (a DICOM AE title).
    """
    info = info if info is not None else REQUEST.get()
    client_id = (info.client_endpoint if info else "") or anonymous
    client_host = (info.client if info else "") or ""
    endpoint = info.endpoint if info else ""
    ours = our_id or endpoint or settings.base_url
    client_role, our_role = ((Role.DESTINATION, Role.SOURCE) if inverted
                             else (Role.SOURCE, Role.DESTINATION))
    client = ActiveParticipant(user_id=client_id, requestor=True, roles=(client_role.value,),
                               network_id=client_host)
    us = _us(ours, False, our_role, settings, endpoint)
    pair = (us, client) if inverted else (client, us)
    return (*pair, *_humans(info))


def client_participants(settings: Settings, our_id: str, url: str, *,
                        inverted: bool = False, their_id: str = ""
                        ) -> tuple[ActiveParticipant, ...]:
    """This node (source, the requestor) calling ``url`` (destination); with ``inverted`` the
    called node is the source of the data. ``their_id``: the called node's UserID when it is
    not ``url`` (an HL7 receiver's MSH-6|MSH-5). The human requestor of the request being
    answered (``REQUEST``), if any, is carried over."""
    us = _us(our_id, True, Role.DESTINATION if inverted else Role.SOURCE, settings)
    other = ActiveParticipant(user_id=their_id or url, requestor=False,
                              roles=((Role.SOURCE if inverted else Role.DESTINATION).value,),
                              network_id=_host_of(url))
    return (us, other, *_humans(REQUEST.get()))


@dataclass(frozen=True, slots=True)
class ClientSide:
    """This node as the initiator of a transaction (a command-line client): ``our_id`` its
    UserID (the wsa:ReplyTo address, MSH-4|MSH-3) calling ``url``; ``their_id`` the called
    node's UserID when it is not ``url``. Builders given one audit the client side."""

    our_id: str
    url: str
    their_id: str = ""


def participants_of(settings: Settings, client: ClientSide | None, *,
                    inverted: bool = False) -> tuple[ActiveParticipant, ...]:
    """``server_participants`` for the request being answered (``client`` None), else
    ``client_participants`` of ``client``; ``inverted`` as for both."""
    if client is None:
        return server_participants(settings, inverted=inverted)
    return client_participants(settings, client.our_id, client.url, inverted=inverted,
                               their_id=client.their_id)


def purpose_of_use(info: RequestInfo | None = None) -> tuple[CodedValue, ...]:
    """The XUA PurposeOfUse of the request being answered (none without XUA)."""
    info = info if info is not None else REQUEST.get()
    return info.requestor.purpose_of_use if info is not None and info.requestor else ()


def patient_object(cx: str, *, control_id: str = "") -> ParticipantObject:
    """A patient (type 1, role 1, Patient Number); HL7 v2 feeds add their MSH-10."""
    return ParticipantObject(object_id=cx, type_code=1, role=1, id_type=_PATIENT_NUMBER,
                             details=(("MSH-10", control_id),) if control_id else ())


def submission_set_object(unique_id: str) -> ParticipantObject:
    """A submission set (type 2, role 20 Job) by its uniqueId."""
    return ParticipantObject(object_id=unique_id, type_code=2, role=20, id_type=_SUBMISSION_SET)


def document_object(unique_id: str, repository_id: str | None,
                    home: str | None = None) -> ParticipantObject:
    """A document (type 2, role 3 Report, Report Number) with its repository and community."""
    details: list[tuple[str, str]] = []
    if repository_id:
        details.append(("Repository Unique Id", repository_id))
    if home:
        details.append(("ihe:homeCommunityID", home))
    return ParticipantObject(object_id=unique_id, type_code=2, role=3, id_type=_REPORT_NUMBER,
                             details=tuple(details))


def query_object(code: str, object_id: str, query: bytes, *,
                 details: Iterable[tuple[str, str]] = ()) -> ParticipantObject:
    """A query (type 2, role 24): IDTypeCode the transaction, the request as
    ParticipantObjectQuery, QueryEncoding UTF-8 then ``details`` (MSH-10, homeCommunityId)."""
    return ParticipantObject(object_id=object_id, type_code=2, role=24,
                             id_type=CodedValue(code, "IHE Transactions", _TRANSACTIONS[code]),
                             query=query, details=(("QueryEncoding", "UTF-8"), *details))


def study_object(study_uid: str, *, sop_uid: str = "", series_uid: str = "",
                 repository_id: str = "", home: str = "") -> ParticipantObject:
    """A DICOM study (type 2, role 3, Study Instance UID) with the instance it is about."""
    pairs = (("ihe:DocumentUniqueId", sop_uid), ("Series Instance Unique Id", series_uid),
             ("Repository Unique Id", repository_id), ("ihe:homeCommunityID", home))
    return ParticipantObject(object_id=study_uid, type_code=2, role=3, id_type=_STUDY_UID,
                             details=tuple((k, v) for k, v in pairs if v))


def rest_request(client: str, url: str) -> RequestInfo:
    """The RequestInfo of a REST request (WADO, DICOMweb, FHIR): no ReplyTo, so the client's
    address is its UserID too (as dcm4chee does)."""
    return RequestInfo(client=client, endpoint=url, client_endpoint=client)


def with_request(info: RequestInfo, build: Build) -> Build:
    """``build`` run with ``REQUEST`` set to ``info`` (for a listener that did not set it)."""
    def run() -> AuditEvent | Iterable[AuditEvent]:
        token = REQUEST.set(info)
        try:
            made = build()
            return made if isinstance(made, AuditEvent) else list(made)
        finally:
            REQUEST.reset(token)
    return run


def _built(build: Build) -> list[AuditEvent]:
    try:
        made = build()
        return [made] if isinstance(made, AuditEvent) else list(made)
    except Exception:  # auditing stays off the failure path of the transaction
        log.exception("an audit event could not be built")
        return []


def record_in(conn: Connection, settings: Settings, build: Build) -> None:
    """Record the events ``build`` makes in ``conn``'s transaction (the durable outbox: an
    INSERT that fails rolls the change back with it; a build that fails is only logged)."""
    for event in _built(build):
        try:
            trail.record(conn, event, settings)
        except SQLAlchemyError:
            raise
        except Exception:  # the message could not be rendered; nothing was written
            log.exception("audit event %s not recorded", event.event_type)


def record_after(engine: Engine, settings: Settings, build: Build) -> None:
    """Record the events ``build`` makes in a transaction of their own; never raises."""
    for event in _built(build):
        try:
            trail.record_now(engine, event, settings)
        except Exception:  # record_now should not raise; the transaction's answer matters more
            log.exception("audit event %s not recorded", event.event_type)
