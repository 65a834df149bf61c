"""Accept acknowledgements: the MCCI_IN000002UV01 message and the ``acknowledgement`` element
that PRPA_IN201310UV02 carries too (MCCI_MT000200UV01 / MCCI_MT000300UV01)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from .codes import (
    ACK_DETAIL_CODE_SYSTEM,
    AcknowledgementDetailCode,
    AcknowledgementType,
    Interaction,
)
from .datatypes import II, add_ii, find, find_all, sub
from .schema import SchemaIssue
from .transmission import Transmission, transmission

__all__ = ["AckDetail", "add_acknowledgement", "build_ack", "read_acknowledgement",
           "syntax_details", "internal_error_detail"]


@dataclass(frozen=True, slots=True)
class AckDetail:
    """One acknowledgementDetail: ``typeCode`` E/W/I, a coded reason, its text and where."""

    code: str
    code_system: str
    text: str
    location: str | None = None
    type_code: str = "E"


def add_acknowledgement(message: etree._Element, type_code: AcknowledgementType,
                        target: II | None, details: Sequence[AckDetail] = ()) -> etree._Element:
    """Append ``acknowledgement`` (typeCode, targetMessage/id = the request id, the details)."""
    ack = sub(message, "acknowledgement")
    sub(ack, "typeCode", {"code": type_code})
    target_el = sub(ack, "targetMessage")
    if target is None or target.root is None:
        add_ii(target_el, "id", None)
    else:
        add_ii(target_el, "id", target.root, target.extension)
    for detail in details:
        el = sub(ack, "acknowledgementDetail", {"typeCode": detail.type_code})
        sub(el, "code", {"code": detail.code, "codeSystem": detail.code_system})
        sub(el, "text", text=detail.text)
        if detail.location:
            sub(el, "location", text=detail.location)
    return ack


def build_ack(request: Transmission | None, type_code: AcknowledgementType,
              details: Sequence[AckDetail] = (), *, sender: str) -> etree._Element:
    """An MCCI_IN000002UV01 answering ``request`` (None when it could not be read), addressed
    to the request's sender device, sent as device ``sender``.

    >>> build_ack(read_transmission(message), AcknowledgementType.AA, sender=device_id(settings))
    """
    ack = transmission(Interaction.MCCI_IN000002UV01, sender=sender,
                       receiver=request.sender if request else None)
    add_acknowledgement(ack, type_code, request.id if request else None, details)
    return ack


def read_acknowledgement(message: etree._Element) -> tuple[str | None, list[AckDetail]]:
    """(acknowledgement/typeCode/@code, its details) of a received acknowledgement."""
    ack = find(message, "acknowledgement")
    if ack is None:
        return None, []
    type_code = find(ack, "typeCode")
    details = []
    for el in find_all(ack, "acknowledgementDetail"):
        code = find(el, "code")
        text = find(el, "text")
        location = find(el, "location")
        details.append(AckDetail(
            code=code.get("code", "") if code is not None else "",
            code_system=code.get("codeSystem", "") if code is not None else "",
            text="".join(str(t) for t in text.itertext()) if text is not None else "",
            location=location.text if location is not None else None,
            type_code=el.get("typeCode", "E")))
    return (type_code.get("code") if type_code is not None else None), details


def syntax_details(issues: Iterable[SchemaIssue]) -> list[AckDetail]:
    """One SYN detail per schema violation, located where the validator found it."""
    return [AckDetail(code=AcknowledgementDetailCode.SYN, code_system=ACK_DETAIL_CODE_SYSTEM,
                      text=f"not valid against the message schema: {issue.message}",
                      location=issue.location) for issue in issues]


def internal_error_detail(exc: Exception) -> AckDetail:
    """An INTERR detail naming only the exception type (the traceback stays in the log)."""
    return AckDetail(code=AcknowledgementDetailCode.INTERR, code_system=ACK_DETAIL_CODE_SYSTEM,
                     text=f"internal error ({type(exc).__name__}); see the PIX Manager log")
