"""Skeleton of an outgoing SOAP 1.2 envelope with its WS-Addressing headers (package-private)."""

from __future__ import annotations

import uuid

from lxml import etree

from .ns import SOAP12_ENV, WSA, qname

__all__ = ["new_message_id", "skeleton", "serialize"]

_NSMAP = {"env": SOAP12_ENV, "wsa": WSA}


def new_message_id() -> str:
    """A fresh ``urn:uuid:`` message id for wsa:MessageID."""
    return f"urn:uuid:{uuid.uuid4()}"


def skeleton(
    action: str, *, relates_to: str | None, message_id: str | None
) -> tuple[etree._Element, etree._Element, etree._Element]:
    """Envelope, Header and Body of a reply; Header holds wsa:Action, MessageID and RelatesTo."""
    envelope = etree.Element(qname(SOAP12_ENV, "Envelope"), nsmap=_NSMAP)
    header = etree.SubElement(envelope, qname(SOAP12_ENV, "Header"))
    action_el = etree.SubElement(header, qname(WSA, "Action"))
    # IHE_WSA101: wsa:Action carries mustUnderstand on the response too.
    action_el.set(qname(SOAP12_ENV, "mustUnderstand"), "1")
    action_el.text = action
    etree.SubElement(header, qname(WSA, "MessageID")).text = message_id or new_message_id()
    if relates_to:
        etree.SubElement(header, qname(WSA, "RelatesTo")).text = relates_to
    body = etree.SubElement(envelope, qname(SOAP12_ENV, "Body"))
    return envelope, header, body


def serialize(envelope: etree._Element) -> bytes:
    """UTF-8 bytes with an XML declaration."""
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
