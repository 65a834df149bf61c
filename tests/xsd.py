"""XSD validation for tests: one lxml XMLSchema over the repo's official ebRS 3.0, IHE XDS.b and
SOAP 1.2 schemas (``wsdl/``), so requests and responses can be checked against the contract."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

__all__ = ["SCHEMA_DIR", "NAMESPACES", "schema", "assert_valid", "is_valid"]

#: The official schema copies shipped in the repository (not ../shared, which CI may lack).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "wsdl"

#: Namespace -> schema file (relative to SCHEMA_DIR) that declares it.
NAMESPACES: dict[str, str] = {
    "http://www.w3.org/2003/05/soap-envelope": "w3/soap-1.2-envelope.xsd",
    "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0": "iti/schema/ebRS/rim.xsd",
    "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0": "iti/schema/ebRS/rs.xsd",
    "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0": "iti/schema/ebRS/query.xsd",
    "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0": "iti/schema/ebRS/lcm.xsd",
    "urn:ihe:iti:xds-b:2007": "iti/schema/IHE/XDS.b_DocumentRepository.xsd",
}


@cache
def schema() -> etree.XMLSchema:
    """One schema for every namespace above.

    rs, query, lcm and rim import each other, so separate XMLSchema objects would each carry the
    whole set anyway; a small driver document importing all of them by absolute file URI compiles
    it once. The SOAP Body is ``processContents="lax"``, so an Envelope is validated down into the
    ebRS payload too.
    """
    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{(SCHEMA_DIR / rel).as_uri()}"/>'
        for ns, rel in NAMESPACES.items()
    )
    driver = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        f'targetNamespace="urn:x-xds-tests:all">{imports}</xs:schema>'
    )
    doc = etree.fromstring(driver.encode(), base_url=(SCHEMA_DIR / "all.xsd").as_uri())
    return etree.XMLSchema(doc)


def _element(node: etree._Element | etree._ElementTree | bytes) -> etree._Element:
    if isinstance(node, bytes):
        return etree.fromstring(node)
    if isinstance(node, etree._ElementTree):
        return node.getroot()
    return node


def is_valid(node: etree._Element | etree._ElementTree | bytes) -> bool:
    """Whether ``node`` (an element, a tree or XML bytes) is valid against the contract schemas."""
    return bool(schema().validate(_element(node)))


def assert_valid(node: etree._Element | etree._ElementTree | bytes) -> None:
    """Raise AssertionError with the schema error log unless ``node`` is schema-valid.

    The root element's namespace must be one of ``NAMESPACES`` (a SOAP Envelope, an ebRS
    request/response, an IHE XDS.b element); anything else fails, since nothing would check it.
    """
    el = _element(node)
    ns = etree.QName(el).namespace
    if ns not in NAMESPACES:
        raise AssertionError(f"no schema for namespace {ns!r} of <{etree.QName(el).localname}>")
    s = schema()
    if not s.validate(el):
        log = "\n".join(
            f"line {e.line}: {e.message}" for e in s.error_log  # type: ignore[attr-defined]
        )
        raise AssertionError(f"<{etree.QName(el).localname}> is not schema-valid:\n{log}")
