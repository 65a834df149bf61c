"""HL7 v3 vocabulary used by the PIX v3 messages: interactions, acknowledgement and query codes
(HL7 V3 NE2008; IHE ITI TF-2b §3.44-3.46)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "HL7V3", "INTERACTION_ID_ROOT", "ACK_DETAIL_CODE_SYSTEM", "HL7_ERROR_CODE_SYSTEM",
    "Interaction", "AcknowledgementType", "AcknowledgementDetailCode", "HL7ErrorCode",
    "QueryResponseCode",
]

#: The namespace of every HL7 v3 XML ITS element.
HL7V3 = "urn:hl7-org:v3"
#: interactionId/@root and controlActProcess/code/@codeSystem (HL7 interaction and trigger ids).
INTERACTION_ID_ROOT = "2.16.840.1.113883.1.6"
#: AcknowledgementDetailCode (HL7 v3 vocabulary), for syntax and internal errors.
ACK_DETAIL_CODE_SYSTEM = "2.16.840.1.113883.5.1100"
#: HL7 table 0357 Message error condition codes, as IPF sends them in PIX v3 answers.
HL7_ERROR_CODE_SYSTEM = "2.16.840.1.113883.12.357"


class Interaction(StrEnum):
    """The v3 interactions of PIX v3 (ITI-44, ITI-45, ITI-46) and their accept acknowledgement."""

    PRPA_IN201301UV02 = "PRPA_IN201301UV02"  # Patient Registry Record Added (ITI-44)
    PRPA_IN201302UV02 = "PRPA_IN201302UV02"  # Patient Registry Record Revised (ITI-44, ITI-46)
    PRPA_IN201304UV02 = "PRPA_IN201304UV02"  # Patient Registry Duplicates Resolved (ITI-44)
    PRPA_IN201309UV02 = "PRPA_IN201309UV02"  # Get Identifiers Query (ITI-45)
    PRPA_IN201310UV02 = "PRPA_IN201310UV02"  # Get Identifiers Query Response (ITI-45)
    MCCI_IN000002UV01 = "MCCI_IN000002UV01"  # Accept Acknowledgement

    @property
    def action(self) -> str:
        """The wsa:Action, ``urn:hl7-org:v3:`` + the interaction id (ITI TF-2b Table 3.44.5-1)."""
        return f"{HL7V3}:{self.value}"

    @property
    def trigger_event(self) -> str:
        """controlActProcess/code/@code: the trigger event id (``PRPA_TE201301UV02``)."""
        return self.value.replace("_IN", "_TE", 1)


class AcknowledgementType(StrEnum):
    """acknowledgement/typeCode (original acknowledgement mode; PIX uses the A codes)."""

    AA = "AA"  # accepted
    AE = "AE"  # application error
    AR = "AR"  # rejected


class AcknowledgementDetailCode(StrEnum):
    """acknowledgementDetail/code of code system 2.16.840.1.113883.5.1100."""

    SYN = "SYN"  # syntax error: the message is not valid against its schema
    SYN105 = "SYN105"  # required element missing
    SYN110 = "SYN110"  # number of repetitions exceeds limit
    INTERR = "INTERR"  # internal system error


class HL7ErrorCode(StrEnum):
    """acknowledgementDetail/code of HL7 table 0357 (code system 2.16.840.1.113883.12.357)."""

    RequiredFieldMissing = "101"
    DataTypeError = "102"
    UnknownKeyIdentifier = "204"  # unknown patient id, source or target domain (ITI-45)
    DuplicateKeyIdentifier = "205"  # ids that cannot be linked or merged as asked
    ApplicationInternalError = "207"


class QueryResponseCode(StrEnum):
    """controlActProcess/queryAck/queryResponseCode of a query response."""

    OK = "OK"  # data found
    NF = "NF"  # nothing found
    AE = "AE"  # application error
    QE = "QE"  # query parameter error
