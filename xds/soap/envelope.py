"""SOAP 1.2 envelope checks on receipt and the reply envelope (SOAP 1.2 Part 1 §5, IHE App. V)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from ._build import new_message_id, serialize, skeleton
from .faults import SoapFault
from .ns import ROLE_NEXT, ROLE_ULTIMATE_RECEIVER, SOAP11_ENV, SOAP12_ENV, qname
from .wsa import WSA_HEADERS

__all__ = ["Envelope", "build_envelope", "new_message_id", "parse_envelope"]

_ENVELOPE = qname(SOAP12_ENV, "Envelope")
_HEADER = qname(SOAP12_ENV, "Header")
_BODY = qname(SOAP12_ENV, "Body")
_MUST_UNDERSTAND = qname(SOAP12_ENV, "mustUnderstand")
_ROLE = qname(SOAP12_ENV, "role")
_OUR_ROLES = (None, "", ROLE_NEXT, ROLE_ULTIMATE_RECEIVER)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A checked SOAP 1.2 envelope: its header blocks and the single child of env:Body."""

    root: etree._Element
    headers: tuple[etree._Element, ...]
    body: etree._Element


def parse_envelope(root: etree._Element, *, understood: frozenset[str] = WSA_HEADERS) -> Envelope:
    """Check the envelope ``root`` and split it into header blocks and body.

    ``understood`` holds the Clark names of header blocks the receiver processes. Raises
    ``SoapFault``: VersionMismatch for a non-1.2 envelope, Sender for a malformed one,
    MustUnderstand for a mandatory header block targeted at us that is not understood.
    """
    if root.tag != _ENVELOPE:
        if isinstance(root.tag, str) and etree.QName(root).localname == "Envelope":
            version = "SOAP 1.1" if root.tag == qname(SOAP11_ENV, "Envelope") else "unknown"
            raise SoapFault("VersionMismatch", f"{version} envelope; only SOAP 1.2 is supported")
        raise SoapFault("Sender", "root element is not a SOAP 1.2 env:Envelope")
    children = _elements(root)
    header: etree._Element | None = None
    if children and children[0].tag == _HEADER:
        header = children.pop(0)
    if len(children) != 1 or children[0].tag != _BODY:
        raise SoapFault("Sender", "env:Envelope must hold an optional env:Header and one env:Body")
    body_children = _elements(children[0])
    if len(body_children) != 1:
        raise SoapFault(
            "Sender", f"env:Body must hold exactly one element, not {len(body_children)}"
        )
    blocks = tuple(_elements(header)) if header is not None else ()
    _check_must_understand(blocks, understood)
    return Envelope(root=root, headers=blocks, body=body_children[0])


def build_envelope(
    body: etree._Element,
    *,
    action: str,
    relates_to: str | None = None,
    message_id: str | None = None,
    headers: Sequence[etree._Element] = (),
) -> bytes:
    """A serialized SOAP 1.2 envelope around ``body`` with wsa:Action (mustUnderstand),
    a fresh wsa:MessageID (unless given), wsa:RelatesTo (when given) and extra ``headers``."""
    envelope, header, body_el = skeleton(action, relates_to=relates_to, message_id=message_id)
    header.extend(headers)
    body_el.append(body)
    return serialize(envelope)


def _elements(parent: etree._Element) -> list[etree._Element]:
    # Comments and processing instructions are allowed around the blocks; text is not.
    if (parent.text or "").strip() or any((c.tail or "").strip() for c in parent):
        raise SoapFault("Sender", f"unexpected text inside {etree.QName(parent).localname}")
    return [c for c in parent if isinstance(c.tag, str)]


def _check_must_understand(blocks: Sequence[etree._Element], understood: frozenset[str]) -> None:
    missing: list[str] = []
    for block in blocks:
        value = (block.get(_MUST_UNDERSTAND) or "false").strip()
        if value not in ("1", "true", "0", "false"):
            raise SoapFault("Sender", f"invalid env:mustUnderstand value {value!r}")
        if value in ("0", "false") or block.get(_ROLE) not in _OUR_ROLES:
            continue
        if block.tag not in understood:
            missing.append(str(block.tag))
    if missing:
        raise SoapFault(
            "MustUnderstand",
            "header block(s) not understood: " + ", ".join(missing),
            not_understood=missing,
        )
