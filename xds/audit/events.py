"""Audit events: what a transaction did, as plain data (digest §5.1, DICOM PS3.15 A.5).

A transaction builds an ``AuditEvent`` and hands it to ``xds.audit.trail.record`` inside the
database transaction of the change it describes; ``xds.audit.message`` turns it into the DICOM
AuditMessage XML. ``REQUEST`` carries, for the request being answered, who asked (peer address,
the endpoint called, the XUA identity), so the code deep in a transaction need not be passed it.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum, IntEnum, StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "CodedValue", "EventId", "Action", "Outcome", "Role", "ActiveParticipant",
    "ParticipantObject", "AuditEvent", "Requestor", "RequestInfo", "REQUEST",
]


@dataclass(frozen=True, slots=True)
class CodedValue:
    """A coded value of an audit message: csd-code, codeSystemName, originalText."""

    code: str
    system: str
    display: str = ""


class EventId(Enum):
    """EventID (DCM, CID 400)."""

    APPLICATION_ACTIVITY = CodedValue("110100", "DCM", "Application Activity")
    INSTANCES_ACCESSED = CodedValue("110103", "DCM", "DICOM Instances Accessed")
    INSTANCES_TRANSFERRED = CodedValue("110104", "DCM", "DICOM Instances Transferred")
    EXPORT = CodedValue("110106", "DCM", "Export")
    IMPORT = CodedValue("110107", "DCM", "Import")
    PATIENT_RECORD = CodedValue("110110", "DCM", "Patient Record")
    QUERY = CodedValue("110112", "DCM", "Query")
    SECURITY_ALERT = CodedValue("110113", "DCM", "Security Alert")
    USER_AUTHENTICATION = CodedValue("110114", "DCM", "User Authentication")


class Action(StrEnum):
    """EventActionCode."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(IntEnum):
    """EventOutcomeIndicator."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


class Role(Enum):
    """RoleIDCode of an ActiveParticipant (DCM)."""

    SOURCE = CodedValue("110153", "DCM", "Source Role ID")
    DESTINATION = CodedValue("110152", "DCM", "Destination Role ID")
    APPLICATION = CodedValue("110150", "DCM", "Application")
    APPLICATION_LAUNCHER = CodedValue("110151", "DCM", "Application Launcher")


@dataclass(frozen=True, slots=True)
class ActiveParticipant:
    """A user, process or node that took part (source, destination, the human requestor)."""

    user_id: str
    requestor: bool
    roles: tuple[CodedValue, ...] = ()
    #: IP address (network access point type 2) or host name (type 1).
    network_id: str = ""
    alternative_user_id: str = ""
    user_name: str = ""


@dataclass(frozen=True, slots=True)
class ParticipantObject:
    """An object the event is about: a patient, a submission set, a document, a query, a study.

    ``type_code``: 1 person, 2 system object; ``role``: 1 patient, 3 report, 20 job, 24 query;
    ``id_type``: ParticipantObjectIDTypeCode; ``query``: the request, base64-encoded in the
    message; ``details``: (type, value) pairs, values base64-encoded in the message.
    """

    object_id: str
    type_code: int
    role: int
    id_type: CodedValue
    name: str = ""
    query: bytes | None = None
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit message's content."""

    event_id: EventId
    action: Action
    outcome: Outcome
    #: EventTypeCode: the transaction, e.g. CodedValue("ITI-18", "IHE Transactions",
    #: "Registry Stored Query"); None for events of no transaction (application start).
    event_type: CodedValue | None
    participants: tuple[ActiveParticipant, ...] = ()
    objects: tuple[ParticipantObject, ...] = ()
    #: PurposeOfUse (XUA), when the requestor stated one.
    purpose_of_use: tuple[CodedValue, ...] = ()
    #: EventOutcomeDescription: why it failed, when it did.
    description: str = ""
    #: EventDateTime, seconds since the epoch.
    time: float = field(default_factory=time.time)

    @property
    def patient(self) -> str | None:
        """The first patient object's id (CX), for the outbox's patient column."""
        return next((o.object_id for o in self.objects if o.type_code == 1 and o.role == 1),
                    None)


@dataclass(frozen=True, slots=True)
class Requestor:
    """The human user an XUA assertion names (digest §5.3)."""

    #: ``<SPProvidedID><NameID@Issuer>`` as IPF builds it.
    user_id: str
    user_name: str = ""
    organization: str = ""
    organization_id: str = ""
    roles: tuple[CodedValue, ...] = ()
    purpose_of_use: tuple[CodedValue, ...] = ()


class RequestClaim(Protocol):
    """A row the request writes with its first audit record, in that record's transaction
    (the XUA replay claim: ``xds.security.replay.ReplayClaim``); ``record`` may raise to roll
    the transaction back."""

    def record(self, conn: Connection) -> None: ...


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request being answered: who called (address), what was called (the endpoint URL or
    listener ``host:port``), over which transport, and the XUA requestor when there was one."""

    client: str
    endpoint: str
    requestor: Requestor | None = None
    #: The client's own endpoint as it declared it (wsa:ReplyTo / MSH-3), when it did.
    client_endpoint: str = ""
    #: The verified XUA assertion (serialised), passed on to the services the request calls.
    assertion: bytes = field(default=b"", repr=False)
    #: Written by the audit trail in the request's first audit write (``trail.record``).
    claim: RequestClaim | None = field(default=None, repr=False)


#: Set by each listener (SOAP endpoint, FHIR endpoint, MLLP, DICOM) for the request it answers.
REQUEST: ContextVar[RequestInfo | None] = ContextVar("xds_audit_request", default=None)
