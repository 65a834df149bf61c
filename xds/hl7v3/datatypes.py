"""HL7 v3 XML ITS building blocks: element names in ``urn:hl7-org:v3`` and the II, TS, PN, AD and
TEL data types as PIX v3 reads and writes them (HL7 V3 Data Types R1, NE2008)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from .codes import HL7V3
from xds.model.values import now_dtm

__all__ = [
    "II", "is_uid", "v3", "new_message", "sub", "find", "find_all", "read_ii", "add_ii", "ts_now",
    "add_ts", "read_pn", "add_pn", "read_ad", "add_ad", "read_tel", "add_tel", "location_of",
]

#: AD parts in the order of the HL7 v2 XAD components this project stores addresses in
#: (street^other^city^state^zip^country), so v2 and v3 feeds fill ``Demographics.address`` alike.
_AD_PARTS = ("streetAddressLine", "additionalLocator", "city", "state", "postalCode", "country")
#: The ``uid`` type of II/@root: an OID, a UUID or an HL7 reserved id (datatypes-base.xsd).
_UID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))*|[0-9a-zA-Z]{8}(-[0-9a-zA-Z]{4}){3}-[0-9a-zA-Z]{12}"
                  r"|[A-Za-z][A-Za-z0-9\-]*")


@dataclass(frozen=True, slots=True)
class II:
    """An instance identifier: ``root`` (OID, the assigning authority) and ``extension``."""

    root: str | None
    extension: str | None = None
    null_flavor: str | None = None


def is_uid(value: str) -> bool:
    """Whether ``value`` may be an II/@root (OID, UUID or HL7 reserved id)."""
    return _UID.fullmatch(value) is not None


def v3(local: str) -> str:
    """The Clark name ``{urn:hl7-org:v3}local``."""
    return f"{{{HL7V3}}}{local}"


def new_message(local: str) -> etree._Element:
    """A message root in the v3 default namespace with ``ITSVersion="XML_1.0"``."""
    # The default namespace is a None prefix, which the lxml stubs do not admit.
    return etree.Element(v3(local), {"ITSVersion": "XML_1.0"},
                         nsmap={None: HL7V3})  # type: ignore[dict-item]


def sub(parent: etree._Element, local: str, attrib: Mapping[str, str] | None = None,
        text: str | None = None) -> etree._Element:
    """Append the v3 element ``local`` (attributes in the given order) to ``parent``."""
    el = etree.SubElement(parent, v3(local), dict(attrib or {}))
    if text is not None:
        el.text = text
    return el


def _steps(path: str) -> str:
    return "/".join(f"hl7:{step}" for step in path.split("/"))


def find(el: etree._Element, path: str) -> etree._Element | None:
    """The first element at ``path`` (``a/b/c``, v3 local names) below ``el``."""
    return el.find(_steps(path), {"hl7": HL7V3})


def find_all(el: etree._Element, path: str) -> list[etree._Element]:
    """Every element at ``path`` below ``el``, in document order."""
    return list(el.iterfind(_steps(path), {"hl7": HL7V3}))


def read_ii(el: etree._Element) -> II:
    """The II in ``el`` (empty attributes count as absent)."""
    return II(root=el.get("root") or None, extension=el.get("extension") or None,
              null_flavor=el.get("nullFlavor") or None)


def add_ii(parent: etree._Element, local: str, root: str | None, extension: str | None = None
           ) -> etree._Element:
    """Append an II; with no ``root`` it is ``nullFlavor="UNK"``."""
    if root is None:
        return sub(parent, local, {"nullFlavor": "UNK"})
    attrib = {"root": root}
    if extension is not None:
        attrib["extension"] = extension
    return sub(parent, local, attrib)


def ts_now() -> str:
    """The current time as a TS value, UTC, to the second (``YYYYMMDDHHMMSS``)."""
    return now_dtm()


def add_ts(parent: etree._Element, local: str, value: str) -> etree._Element:
    """Append a TS with ``@value``."""
    return sub(parent, local, {"value": value})


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    value = "".join(str(t) for t in el.itertext()).strip()
    return value or None


def read_pn(el: etree._Element) -> tuple[str | None, str | None]:
    """(family, given) of a PN: the first family part and the first given part."""
    return _text(find(el, "family")), _text(find(el, "given"))


def add_pn(parent: etree._Element, local: str, family: str | None, given: str | None
           ) -> etree._Element:
    """Append a PN; with neither part it is ``nullFlavor="NA"`` (as PIX answers carry it)."""
    if family is None and given is None:
        return sub(parent, local, {"nullFlavor": "NA"})
    pn = sub(parent, local)
    if given is not None:
        sub(pn, "given", text=given)
    if family is not None:
        sub(pn, "family", text=family)
    return pn


def read_ad(el: etree._Element) -> str | None:
    """An AD as ``street^other^city^state^zip^country`` (None when it has none of them)."""
    parts = [_text(find(el, part)) or "" for part in _AD_PARTS]
    if not any(parts):
        return None
    return "^".join(parts).rstrip("^")


def add_ad(parent: etree._Element, local: str, address: str) -> etree._Element:
    """Append an AD from the ``street^other^city^state^zip^country`` form."""
    ad = sub(parent, local)
    for part, value in zip(_AD_PARTS, address.split("^"), strict=False):
        if value:
            sub(ad, part, text=value)
    return ad


def read_tel(el: etree._Element) -> str | None:
    """The URL of a TEL without a ``tel:`` scheme (``tel:+1-555`` -> ``+1-555``)."""
    value = el.get("value") or None
    if value is not None and value.lower().startswith("tel:"):
        value = value[4:]
    return value


def add_tel(parent: etree._Element, local: str, phone: str) -> etree._Element:
    """Append a TEL; a bare number gets the ``tel:`` scheme."""
    value = phone if ":" in phone else "tel:" + phone.replace(" ", "")
    return sub(parent, local, {"value": value})


def location_of(el: etree._Element, root: etree._Element) -> str:
    """An XPath of ``el`` from the message ``root`` in local names, e.g.
    ``/PRPA_IN201301UV02/controlActProcess/subject/registrationEvent/subject1/patient/id[2]``;
    a position is written only where siblings share the name."""
    steps: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if node is root or parent is None:
            steps.append(name)
            break
        same = [c for c in parent if c.tag == node.tag]
        if len(same) > 1:
            name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))
