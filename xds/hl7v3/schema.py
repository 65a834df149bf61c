"""Validation of HL7 v3 messages against the official NE2008 message schemas in ``wsdl/``
(one lxml XMLSchema per interaction, compiled once on first use)."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree

from ..config import WSDL_DIR
from .datatypes import location_of

__all__ = ["SCHEMA_DIR", "SchemaIssue", "validate", "message_schema"]

#: The HL7 v3 multicache schemas, one ``<interaction>.xsd`` per message.
SCHEMA_DIR = WSDL_DIR / "iti" / "schema" / "HL7V3" / "NE2008" / "multicacheschemas"
#: Enough issues to fix a message; a broken one could otherwise list thousands.
_MAX_ISSUES = 20


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One schema violation: the validator's message and the XPath of the offending element."""

    message: str
    location: str | None


class _Validator:
    def __init__(self, path: Path) -> None:
        # The schemas are our own files, so a plain parser (which may read the includes) is right.
        self.schema = etree.XMLSchema(etree.parse(str(path)))
        # An XMLSchema keeps its error log on the instance: one validation at a time.
        self.lock = threading.Lock()


@cache
def _validator(interaction: str) -> _Validator:
    path = SCHEMA_DIR / f"{interaction}.xsd"
    if not interaction.isidentifier() or not path.is_file():
        raise ValueError(f"no HL7 v3 schema for {interaction!r}")
    return _Validator(path)


def message_schema(interaction: str) -> etree.XMLSchema:
    """The compiled schema of ``interaction`` (e.g. ``PRPA_IN201301UV02``); ValueError if none."""
    return _validator(interaction).schema


def validate(message: etree._Element, interaction: str | None = None) -> list[SchemaIssue]:
    """The schema violations of ``message`` against the schema of ``interaction`` (by default
    the root's own name); empty when valid. A root of another name is a violation too."""
    name = interaction or etree.QName(message).localname
    validator = _validator(name)
    # A standalone copy: the message may sit inside a SOAP envelope, and the validator's paths
    # are then resolvable against the copy alone.
    doc = etree.ElementTree(copy.deepcopy(message))
    with validator.lock:
        if validator.schema.validate(doc):
            return []
        entries = [(e.message, e.path) for e in validator.schema.error_log][:_MAX_ISSUES]  # type: ignore[attr-defined]
    root = doc.getroot()
    return [SchemaIssue(message=text.replace("{urn:hl7-org:v3}", ""),
                        location=_location(doc, root, path)) for text, path in entries]


def _location(doc: etree._ElementTree, root: etree._Element, path: str | None) -> str | None:
    if not path:
        return None
    prefixes = {p: ns for el in root.iter() if isinstance(el.tag, str)
                for p, ns in el.nsmap.items() if p}
    try:
        found = doc.xpath(path, namespaces=prefixes)
    except etree.XPathError:
        return path
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return location_of(found[0], root)
    return path
