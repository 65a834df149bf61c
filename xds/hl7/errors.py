"""HL7 v2 acknowledgment and error codes (HL7 tables 0008, 0357, 0516) and the HL7Error actors raise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = ["AckCode", "ErrorCode", "ErrorSeverity", "Location", "HL7Error"]


class AckCode(StrEnum):
    """MSA-1 Acknowledgment Code, original mode (HL7 table 0008)."""

    AA = "AA"  # Application Accept
    AE = "AE"  # Application Error: understood, but refused (unknown id, bad merge ...)
    AR = "AR"  # Application Reject: not processed (wrong version, type, structure)


class ErrorCode(IntEnum):
    """ERR-3 HL7 Error Code (HL7 v2.5 table 0357); ``text`` is the table's display name."""

    MessageAccepted = 0
    SegmentSequenceError = 100  # also: a required segment is missing
    RequiredFieldMissing = 101
    DataTypeError = 102
    TableValueNotFound = 103
    UnsupportedMessageType = 200
    UnsupportedEventCode = 201
    UnsupportedProcessingId = 202
    UnsupportedVersionId = 203
    UnknownKeyIdentifier = 204
    DuplicateKeyIdentifier = 205
    ApplicationRecordLocked = 206
    ApplicationInternalError = 207

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    ErrorCode.MessageAccepted: "Message accepted",
    ErrorCode.SegmentSequenceError: "Segment sequence error",
    ErrorCode.RequiredFieldMissing: "Required field missing",
    ErrorCode.DataTypeError: "Data type error",
    ErrorCode.TableValueNotFound: "Table value not found",
    ErrorCode.UnsupportedMessageType: "Unsupported message type",
    ErrorCode.UnsupportedEventCode: "Unsupported event code",
    ErrorCode.UnsupportedProcessingId: "Unsupported processing id",
    ErrorCode.UnsupportedVersionId: "Unsupported version id",
    ErrorCode.UnknownKeyIdentifier: "Unknown key identifier",
    ErrorCode.DuplicateKeyIdentifier: "Duplicate key identifier",
    ErrorCode.ApplicationRecordLocked: "Application record locked",
    ErrorCode.ApplicationInternalError: "Application internal error",
}


class ErrorSeverity(StrEnum):
    """ERR-4 Severity (HL7 table 0516)."""

    Error = "E"
    Warning = "W"
    Information = "I"


@dataclass(frozen=True, slots=True)
class Location:
    """ERR-2 Error Location (ERL): segment, its sequence, field, repetition, component,
    sub-component; ``Location("QPD", 1, 3, 1, 4)`` renders ``QPD^1^3^1^4``."""

    segment: str
    sequence: int | None = None
    field: int | None = None
    repetition: int | None = None
    component: int | None = None
    subcomponent: int | None = None

    def render(self, component_separator: str = "^") -> str:
        parts = [self.segment] + [str(p) for p in (self.sequence, self.field, self.repetition,
                                                   self.component, self.subcomponent)
                                  if p is not None]
        return component_separator.join(parts)


class HL7Error(Exception):
    """A refused HL7 v2 message: the ACK code to answer, the ERR-3 code, ERR-2 locations
    (one ERR-2 repetition each) and a human-readable ERR-8 text.

    >>> raise HL7Error(ErrorCode.RequiredFieldMissing, "no PID-3", [Location("PID", 1, 3)])
    """

    def __init__(self, code: ErrorCode, text: str, locations: Sequence[Location] = (), *,
                 ack: AckCode = AckCode.AE) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.locations = tuple(locations)
        self.ack = ack
