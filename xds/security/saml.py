"""SAML 2.0 names used by XUA (ITI-40) and the requestor an assertion describes (digest §5.3).

Shared by the X-Service Provider (``xds.security.xua``) and the test identity provider
(``xds.security.idp``); ``requestor_of`` reads only the element it is given, which the provider
calls on the signed XML signxml returns, never on the received tree.
"""

from __future__ import annotations

import datetime

from lxml import etree

from xds.audit.events import CodedValue, Requestor

from .wsse import NS_SAML2, NS_WSSE

__all__ = [
    "SAML2", "DS", "HL7", "XSI", "WSSE", "EXC_C14N", "CM_BEARER", "CM_SENDER_VOUCHES",
    "CM_HOLDER_OF_KEY", "ATTR_SUBJECT_ID", "ATTR_ORGANIZATION", "ATTR_ORGANIZATION_ID",
    "ATTR_ROLE", "ATTR_PURPOSE_OF_USE", "ATTR_RESOURCE_ID", "saml", "parse_instant",
    "format_instant", "requestor_of",
]

SAML2 = NS_SAML2
WSSE = NS_WSSE
DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
CM_SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
CM_HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"

ATTR_SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
ATTR_ORGANIZATION = "urn:oasis:names:tc:xspa:1.0:subject:organization"
ATTR_ORGANIZATION_ID = "urn:oasis:names:tc:xspa:1.0:subject:organization-id"
ATTR_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
ATTR_PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
ATTR_RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"


def saml(local: str) -> str:
    """The Clark name of saml2:``local``."""
    return f"{{{SAML2}}}{local}"


def parse_instant(text: str) -> float:
    """An xs:dateTime (SAML: UTC, ``Z``) as seconds since the epoch; naive means UTC.

    Raises ValueError when ``text`` is not a date-time.
    """
    value = datetime.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def format_instant(seconds: float) -> str:
    """Seconds since the epoch as a SAML UTC instant (``2026-12-03T13:00:00Z``)."""
    value = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def requestor_of(assertion: etree._Element) -> Requestor:
    """The human requestor of a (verified) assertion: the ATNA UserID IPF builds,
    ``<SPProvidedID><NameID@Issuer>``, and the XSPA attributes."""
    name_id = assertion.find(f"{saml('Subject')}/{saml('NameID')}")
    issuer = _text(assertion.find(saml("Issuer")))
    sp_provided = name_id.get("SPProvidedID", "") if name_id is not None else ""
    user_id = f"{sp_provided}<{_text(name_id)}@{issuer}>"
    return Requestor(
        user_id=user_id,
        user_name=_first(assertion, ATTR_SUBJECT_ID),
        organization=_first(assertion, ATTR_ORGANIZATION),
        organization_id=_first(assertion, ATTR_ORGANIZATION_ID),
        roles=_coded(assertion, ATTR_ROLE),
        purpose_of_use=_coded(assertion, ATTR_PURPOSE_OF_USE),
    )


def _values(assertion: etree._Element, name: str) -> list[etree._Element]:
    found: list[etree._Element] = []
    for attribute in assertion.iterfind(f"{saml('AttributeStatement')}/{saml('Attribute')}"):
        if attribute.get("Name") == name:
            found.extend(attribute.iterfind(saml("AttributeValue")))
    return found


def _first(assertion: etree._Element, name: str) -> str:
    return next((text for v in _values(assertion, name) if (text := _text(v))), "")


def _coded(assertion: etree._Element, name: str) -> tuple[CodedValue, ...]:
    codes: list[CodedValue] = []
    for value in _values(assertion, name):
        # XSPA: an hl7:Role / hl7:PurposeOfUse CE element; a bare string is taken as the code.
        element = next((c for c in value if isinstance(c.tag, str)), None)
        if element is not None and element.get("code"):
            codes.append(CodedValue(element.get("code", ""), element.get("codeSystem", ""),
                                    element.get("displayName", "")))
        elif element is None and _text(value):
            codes.append(CodedValue(_text(value), ""))
    return tuple(codes)


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""
