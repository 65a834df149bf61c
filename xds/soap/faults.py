"""SOAP 1.2 faults (SOAP 1.2 Part 1 §5.4) and their envelopes, including WS-Addressing faults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from lxml import etree

from ._build import serialize, skeleton
from .ns import SOAP12_ENV, WSA, WSA_FAULT_ACTION, WSA_SOAP_FAULT_ACTION, WSSE, XML, qname

__all__ = ["FaultCode", "SoapFault", "build_fault"]

FaultCode = Literal[
    "VersionMismatch", "MustUnderstand", "Sender", "Receiver", "DataEncodingUnknown"
]

# SOAP 1.2 Part 2 §7.5.1.2 maps VersionMismatch and MustUnderstand to 500; we answer 400 so that
# nothing but a genuine server failure ever looks like one (product rule: no 500 on the wire).
_STATUS: dict[str, int] = {
    "VersionMismatch": 400,
    "MustUnderstand": 400,
    "Sender": 400,
    "DataEncodingUnknown": 400,
    "Receiver": 500,
}


#: Conventional prefixes of well-known subcode namespaces (any other gets "sc").
_PREFIXES = {WSA: "wsa", WSSE: "wsse"}


class SoapFault(Exception):
    """An envelope-level error answered with a SOAP 1.2 Fault instead of a business response.

    ``subcode`` and the names in ``not_understood`` are Clark-notation QNames
    (``{http://www.w3.org/2005/08/addressing}ActionNotSupported``); ``detail`` is appended to
    env:Detail; ``status`` overrides the HTTP status (413, 415).
    """

    def __init__(
        self,
        code: FaultCode,
        reason: str,
        *,
        subcode: str | None = None,
        detail: etree._Element | None = None,
        not_understood: Sequence[str] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.code: FaultCode = code
        self.reason = reason
        self.subcode = subcode
        self.detail = detail
        self.not_understood = tuple(not_understood)
        self.status = status

    @property
    def http_status(self) -> int:
        """The HTTP status this fault is sent with."""
        return self.status or _STATUS[self.code]

    @property
    def is_wsa_fault(self) -> bool:
        """Whether the subcode is one of WS-Addressing 1.0 SOAP Binding §6."""
        return self.subcode is not None and self.subcode.startswith("{" + WSA + "}")

    def __repr__(self) -> str:
        return f"SoapFault({self.code!r}, {self.reason!r}, subcode={self.subcode!r})"


def build_fault(fault: SoapFault, relates_to: str | None = None) -> bytes:
    """The serialized SOAP 1.2 envelope carrying ``fault``, as a reply to ``relates_to``."""
    action = WSA_FAULT_ACTION if fault.is_wsa_fault else WSA_SOAP_FAULT_ACTION
    envelope, header, body = skeleton(action, relates_to=relates_to, message_id=None)
    for name in fault.not_understood:
        # SOAP 1.2 Part 1 §5.4.8: one env:NotUnderstood block per header not understood.
        ns, local = _split(name)
        block = etree.SubElement(
            header, qname(SOAP12_ENV, "NotUnderstood"), nsmap={"q": ns} if ns else None
        )
        block.set("qname", f"q:{local}" if ns else local)
    if fault.code == "VersionMismatch":
        # SOAP 1.2 Part 1 §5.4.7: tell the sender which envelope version we do speak.
        upgrade = etree.SubElement(header, qname(SOAP12_ENV, "Upgrade"))
        etree.SubElement(upgrade, qname(SOAP12_ENV, "SupportedEnvelope"), qname="env:Envelope")
    fault_el = etree.SubElement(body, qname(SOAP12_ENV, "Fault"))
    code_el = etree.SubElement(fault_el, qname(SOAP12_ENV, "Code"))
    etree.SubElement(code_el, qname(SOAP12_ENV, "Value")).text = "env:" + fault.code
    if fault.subcode is not None:
        ns, local = _split(fault.subcode)
        prefix = _PREFIXES.get(ns, "sc")
        sub = etree.SubElement(code_el, qname(SOAP12_ENV, "Subcode"))
        value = etree.SubElement(
            sub, qname(SOAP12_ENV, "Value"), nsmap={prefix: ns} if ns else None
        )
        value.text = f"{prefix}:{local}" if ns else local
    reason = etree.SubElement(fault_el, qname(SOAP12_ENV, "Reason"))
    text = etree.SubElement(reason, qname(SOAP12_ENV, "Text"))
    text.set(qname(XML, "lang"), "en")
    text.text = fault.reason
    if fault.detail is not None:
        etree.SubElement(fault_el, qname(SOAP12_ENV, "Detail")).append(fault.detail)
    return serialize(envelope)


def _split(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name
