"""A tiny raw-HTTP SOAP 1.2 + WS-Addressing client for tests, independent of the ``xds`` code.

Usage::

    resp, body = soapclient.post(registry_url, soapclient.ITI42, samples.submission(pid))
    assert soapclient.status(body) == soapclient.SUCCESS, soapclient.registry_response_errors(body)
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

import httpx
from lxml import etree

__all__ = [
    "NS_SOAP", "NS_WSA", "ANONYMOUS", "ITI18", "ITI42", "SUCCESS", "FAILURE", "PARTIAL_SUCCESS",
    "ERROR", "WARNING", "RegistryError", "envelope", "post", "post_raw", "parse_envelope",
    "body_of", "header", "registry_response_errors", "error_codes", "status",
]

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

CONTENT_TYPE = "application/soap+xml; charset=UTF-8"

_S = f"{{{NS_SOAP}}}"
_A = f"{{{NS_WSA}}}"


class RegistryError(NamedTuple):
    """One ``rs:RegistryError``: attribute values, ``None`` where absent."""

    errorCode: str | None
    codeContext: str | None
    location: str | None
    severity: str | None


def envelope(
    action: str,
    body: bytes | etree._Element,
    *,
    to: str | None = None,
    message_id: str | None = None,
) -> bytes:
    """A SOAP 1.2 envelope around ``body`` with wsa:Action (mustUnderstand), MessageID, ReplyTo
    (anonymous) and, when given, To."""
    env = etree.Element(_S + "Envelope", nsmap={"s": NS_SOAP, "a": NS_WSA})
    hdr = etree.SubElement(env, _S + "Header")
    act = etree.SubElement(hdr, _A + "Action", {_S + "mustUnderstand": "1"})
    act.text = action
    etree.SubElement(hdr, _A + "MessageID").text = message_id or f"urn:uuid:{uuid.uuid4()}"
    reply_to = etree.SubElement(hdr, _A + "ReplyTo")
    etree.SubElement(reply_to, _A + "Address").text = ANONYMOUS
    if to is not None:
        etree.SubElement(hdr, _A + "To", {_S + "mustUnderstand": "1"}).text = to
    soap_body = etree.SubElement(env, _S + "Body")
    soap_body.append(etree.fromstring(body) if isinstance(body, bytes) else _copy(body))
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _copy(el: etree._Element) -> etree._Element:
    # append() would move the caller's element out of its tree; tests reuse and mutate samples.
    return etree.fromstring(etree.tostring(el))


def post_raw(
    url: str, data: bytes, *, content_type: str = CONTENT_TYPE, timeout: float = 60.0
) -> httpx.Response:
    """POST ``data`` as is (for malformed-envelope tests)."""
    return httpx.post(url, content=data, headers={"Content-Type": content_type}, timeout=timeout)


def post(
    url: str,
    action: str,
    body: bytes | etree._Element,
    *,
    to: str | None = None,
    message_id: str | None = None,
    timeout: float = 60.0,
) -> tuple[httpx.Response, etree._Element]:
    """Send ``body`` in an envelope to ``url``; return the HTTP response and the first child of
    the reply's soap:Body (the RegistryResponse, AdhocQueryResponse or soap:Fault).

    Raises AssertionError when the reply is not a SOAP envelope with a non-empty Body.
    """
    resp = post_raw(url, envelope(action, body, to=to, message_id=message_id), timeout=timeout)
    return resp, body_of(parse_envelope(resp.content))


def parse_envelope(data: bytes) -> etree._Element:
    """The soap:Envelope element of a Simple SOAP reply."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise AssertionError(f"reply is not XML ({exc}): {data[:500]!r}") from None
    if root.tag != _S + "Envelope":
        raise AssertionError(f"reply root is {root.tag}, not a SOAP 1.2 Envelope")
    return root


def body_of(env: etree._Element) -> etree._Element:
    """The first element child of soap:Body."""
    body = env.find(_S + "Body")
    if body is None:
        raise AssertionError("reply envelope has no soap:Body")
    for child in body:
        if isinstance(child.tag, str):
            return child
    raise AssertionError("reply soap:Body is empty")


def header(env: etree._Element, local_name: str) -> str | None:
    """Text of the WS-Addressing header ``local_name`` (``Action``, ``RelatesTo``...) or None."""
    el = env.find(f"{_S}Header/{_A}{local_name}")
    return None if el is None else (el.text or "").strip()


def status(el: etree._Element) -> str | None:
    """``@status`` of a RegistryResponse / AdhocQueryResponse."""
    return el.get("status")


def registry_response_errors(el: etree._Element) -> list[RegistryError]:
    """Every ``rs:RegistryError`` of a RegistryResponse / AdhocQueryResponse, in document order."""
    return [
        RegistryError(
            e.get("errorCode"), e.get("codeContext"), e.get("location"), e.get("severity")
        )
        for e in el.iter(f"{{{NS_RS}}}RegistryError")
    ]


def error_codes(el: etree._Element) -> list[str | None]:
    """Just the errorCode of each RegistryError."""
    return [e.errorCode for e in registry_response_errors(el)]
