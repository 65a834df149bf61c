"""WS-Addressing 1.0 message addressing properties of a request (IHE ITI TF-2 App. V §3.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from .faults import SoapFault
from .ns import WSA, qname

__all__ = [
    "Addressing",
    "WSA_HEADERS",
    "ACTION_NOT_SUPPORTED",
    "INVALID_ADDRESSING_HEADER",
    "MESSAGE_ADDRESSING_HEADER_REQUIRED",
    "action_not_supported",
    "parse_addressing",
]

#: Fault subcodes of WS-Addressing 1.0 SOAP Binding §6.4.
ACTION_NOT_SUPPORTED = qname(WSA, "ActionNotSupported")
INVALID_ADDRESSING_HEADER = qname(WSA, "InvalidAddressingHeader")
MESSAGE_ADDRESSING_HEADER_REQUIRED = qname(WSA, "MessageAddressingHeaderRequired")

_SINGLE = ("Action", "MessageID", "To", "ReplyTo", "From", "FaultTo")

#: The header blocks this layer understands (for the mustUnderstand check).
WSA_HEADERS: frozenset[str] = frozenset(qname(WSA, n) for n in (*_SINGLE, "RelatesTo"))


@dataclass(frozen=True, slots=True)
class Addressing:
    """The wsa headers of one request; addresses of EPRs are their wsa:Address text."""

    action: str
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None
    relates_to: str | None = None
    from_: str | None = None


def parse_addressing(headers: Sequence[etree._Element]) -> Addressing:
    """The addressing properties among the SOAP header blocks ``headers``.

    Raises ``SoapFault`` (Sender) with subcode wsa:MessageAddressingHeaderRequired when
    wsa:Action is missing or empty, wsa:InvalidAddressingHeader when a header occurs twice.
    """
    found: dict[str, etree._Element] = {}
    relates_to: str | None = None
    for block in headers:
        if not isinstance(block.tag, str) or not block.tag.startswith("{" + WSA + "}"):
            continue
        local = block.tag[len(WSA) + 2 :]
        if local == "RelatesTo":
            # Several RelatesTo may appear (one per relationship type); the reply one counts.
            if block.get("RelationshipType") in (None, WSA + "/reply"):
                relates_to = relates_to or _text(block)
            continue
        if local not in _SINGLE:
            continue
        if local in found:
            raise SoapFault(
                "Sender",
                f"wsa:{local} occurs more than once",
                subcode=INVALID_ADDRESSING_HEADER,
                detail=_problem_header(local),
            )
        found[local] = block
    action = _text(found["Action"]) if "Action" in found else None
    if not action:
        raise SoapFault(
            "Sender",
            "A required header representing a Message Addressing Property is not present: "
            "wsa:Action",
            subcode=MESSAGE_ADDRESSING_HEADER_REQUIRED,
            detail=_problem_header("Action"),
        )
    return Addressing(
        action=action,
        message_id=_text(found["MessageID"]) if "MessageID" in found else None,
        to=_text(found["To"]) if "To" in found else None,
        reply_to=_address(found.get("ReplyTo")),
        relates_to=relates_to,
        from_=_address(found.get("From")),
    )


def action_not_supported(action: str) -> SoapFault:
    """The WS-Addressing fault for a request whose wsa:Action this endpoint does not serve."""
    detail = etree.Element(qname(WSA, "ProblemAction"), nsmap={"wsa": WSA})
    etree.SubElement(detail, qname(WSA, "Action")).text = action
    return SoapFault(
        "Sender",
        f"The [action] cannot be processed at the receiver: {action}",
        subcode=ACTION_NOT_SUPPORTED,
        detail=detail,
    )


def _problem_header(local: str) -> etree._Element:
    detail = etree.Element(qname(WSA, "ProblemHeaderQName"), nsmap={"wsa": WSA})
    detail.text = f"wsa:{local}"
    return detail


def _text(element: etree._Element) -> str | None:
    text = (element.text or "").strip()
    return text or None


def _address(epr: etree._Element | None) -> str | None:
    if epr is None:
        return None
    address = epr.find(qname(WSA, "Address"))
    return None if address is None else _text(address)
