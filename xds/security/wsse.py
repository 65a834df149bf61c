"""The WS-Security header of an X-Service User (XUA, ITI-40): a SAML 2.0 assertion and a
timestamp in ``wsse:Security`` (WSS SOAP Message Security 1.1 §5, §10; ITI TF-2b §3.40.4.1)."""

from __future__ import annotations

import datetime
import uuid

from lxml import etree

from xds.soap.ns import WSSE as NS_WSSE
from xds.soap.xmlparse import XmlError, parse_xml

__all__ = ["NS_WSSE", "NS_WSU", "NS_SAML2", "MAX_ASSERTION_BYTES", "security_header",
           "read_assertion"]

NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
#: Largest assertion file accepted (a signed assertion with a certificate is a few KiB).
MAX_ASSERTION_BYTES = 1024 * 1024
#: Seconds between wsu:Created and wsu:Expires.
_TIMESTAMP_LIFETIME = 300


def read_assertion(data: bytes) -> etree._Element:
    """``data`` parsed (hardened parser) as one ``saml2:Assertion``; ValueError otherwise."""
    try:
        assertion = parse_xml(data, max_bytes=MAX_ASSERTION_BYTES)
    except XmlError as exc:
        raise ValueError(f"not a SAML assertion: {exc}") from None
    if assertion.tag != f"{{{NS_SAML2}}}Assertion":
        raise ValueError(f"not a saml2:Assertion but {assertion.tag}")
    return assertion


def security_header(assertion: bytes, *, now: datetime.datetime | None = None) -> etree._Element:
    """``wsse:Security`` holding a ``wsu:Timestamp`` (now, expiring in five minutes) and the
    signed ``assertion``, whose bytes are not re-indented: its signature must still verify.

    >>> build_envelope(body, action=action, headers=[security_header(Path("a.xml").read_bytes())])
    """
    created = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    expires = created + datetime.timedelta(seconds=_TIMESTAMP_LIFETIME)
    security = etree.Element(f"{{{NS_WSSE}}}Security", nsmap={"wsse": NS_WSSE, "wsu": NS_WSU})
    timestamp = etree.SubElement(security, f"{{{NS_WSU}}}Timestamp",
                                 {f"{{{NS_WSU}}}Id": f"TS-{uuid.uuid4()}"})
    etree.SubElement(timestamp, f"{{{NS_WSU}}}Created").text = _utc(created)
    etree.SubElement(timestamp, f"{{{NS_WSU}}}Expires").text = _utc(expires)
    security.append(read_assertion(assertion))
    return security


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
