"""Document Consumer, ITI-18 initiator: zeep over the official registry WSDL with WS-Addressing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import zeep
from lxml import etree
from zeep.plugins import Plugin

from xds.config import WSDL_DIR
from xds.actions import Action
from xds.ebrim.vocabulary import NS_QUERY, NS_RIM, ReturnType
from xds.security.credentials import NO_CREDENTIALS, Credentials
from xds.soap.envelope import build_envelope
from xds.soap.ns import SOAP12_ENV, WSA, WSA_ANONYMOUS
from xds.soap.xmlparse import parse_xml

__all__ = ["DocumentConsumer", "RegistryFault", "REGISTRY_WSDL", "multi_patient_query", "quote",
           "quote_list", "adhoc_query_request"]

REGISTRY_WSDL = WSDL_DIR / "iti" / "wsdl" / "XDS.b_DocumentRegistry.wsdl"
_MAX_RESPONSE = 256 * 1024 * 1024


class _IheAddressing(Plugin):
    """Completes the WS-Addressing headers zeep writes from the WSDL's wsaw:Action.

    zeep already adds Action, MessageID and To (so zeep.wsa.WsAddressingPlugin would send them
    twice); IHE also wants mustUnderstand on Action (IHE_WSA101) and ReplyTo (IHE_WSA102).
    """

    def egress(self, envelope: Any, http_headers: Any, operation: Any, binding_options: Any
               ) -> tuple[Any, Any]:
        header = envelope.find(f"{{{SOAP12_ENV}}}Header")
        action = header.find(f"{{{WSA}}}Action") if header is not None else None
        if action is not None:
            action.set(f"{{{SOAP12_ENV}}}mustUnderstand", "true")
        if header is not None and header.find(f"{{{WSA}}}ReplyTo") is None:
            reply_to = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
            etree.SubElement(reply_to, f"{{{WSA}}}Address").text = WSA_ANONYMOUS
        return envelope, http_headers


class DocumentConsumer:
    """Sends ITI-18 stored queries to one registry endpoint, with ``credentials`` (TLS
    client certificate and CAs, XUA assertion).

    >>> consumer = DocumentConsumer("http://127.0.0.1:8080/xds/registry")
    >>> response = consumer.stored_query(StoredQuery.FindDocuments, [
    ...     ("$XDSDocumentEntryPatientId", ["'1^^^&1.2.3&ISO'"]),
    ...     ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"])])
    """

    def __init__(self, endpoint: str, *, timeout: float = 60.0,
                 credentials: Credentials = NO_CREDENTIALS) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        self._credentials = credentials
        # zeep writes the message from the WSDL; httpx sends it, with the TLS options of
        # every other client (zeep's own transport is requests, which knows none of them).
        self._client = zeep.Client(str(REGISTRY_WSDL), plugins=[_IheAddressing()])
        self._service = self._client.create_service(
            "{urn:ihe:iti:xds-b:2007}DocumentRegistry_Binding_Soap12", endpoint)
        self._rim = self._client.type_factory(NS_RIM)
        self._query = self._client.type_factory("urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0")
        #: The query:AdhocQueryRequest of the last ``stored_query``, as sent (for an audit).
        self.last_request: etree._Element | None = None

    def stored_query(
        self,
        query_id: str,
        params: Sequence[tuple[str, Sequence[str]]],
        return_type: ReturnType = ReturnType.LeafClass,
    ) -> etree._Element:
        """Run ``query_id`` with ``params`` (slot name, encoded values; repeat a name for AND).

        Returns the ``query:AdhocQueryResponse`` element as received.
        """
        # ValueListType is a sequence of Value inside an unnamed group, hence zeep's _value_1.
        slots = [self._rim.SlotType1(name=name, ValueList=self._rim.ValueListType(
                     _value_1=[{"Value": value} for value in values]))
                 for name, values in params]
        envelope = self._client.create_message(
            self._service, "DocumentRegistry_RegistryStoredQuery",
            ResponseOption=self._query.ResponseOptionType(
                returnType=str(return_type), returnComposedObjects=True),
            AdhocQuery=self._rim.AdhocQueryType(id=query_id, Slot=slots))
        envelope.find(f"{{{SOAP12_ENV}}}Header").extend(self._credentials.soap_headers())
        body = envelope.find(f"{{{SOAP12_ENV}}}Body")
        self.last_request = body[0] if body is not None and len(body) else None
        response = httpx.post(
            self.endpoint, content=etree.tostring(envelope, xml_declaration=True,
                                                  encoding="UTF-8"),
            headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
            timeout=self._timeout, verify=self._credentials.verify())
        return _body(response.content)


def multi_patient_query(endpoint: str, query_id: str, params: Sequence[tuple[str, Sequence[str]]],
                        *, timeout: float = 60.0,
                        credentials: Credentials = NO_CREDENTIALS) -> etree._Element:
    """ITI-51 Multi-Patient Stored Query (``urn:ihe:iti:2009:MultiPatientStoredQuery``) at
    ``endpoint``, LeafClass; the ``query:AdhocQueryResponse`` element. The registry WSDL has no
    ITI-51 operation, so the request is built here. Raises RegistryFault, httpx.HTTPError."""
    request = adhoc_query_request(query_id, params)
    to = etree.Element(f"{{{WSA}}}To", nsmap={"wsa": WSA})
    to.text = endpoint
    reply_to = etree.Element(f"{{{WSA}}}ReplyTo", nsmap={"wsa": WSA})
    etree.SubElement(reply_to, f"{{{WSA}}}Address").text = WSA_ANONYMOUS
    envelope = build_envelope(request, action=Action.MultiPatientStoredQuery,
                              headers=[to, reply_to, *credentials.soap_headers()])
    response = httpx.post(endpoint, content=envelope, timeout=timeout, headers={
        "Content-Type": "application/soap+xml; charset=UTF-8"}, verify=credentials.verify())
    return _body(response.content)


def adhoc_query_request(query_id: str, params: Sequence[tuple[str, Sequence[str]]],
                        return_type: ReturnType = ReturnType.LeafClass) -> etree._Element:
    """The ``query:AdhocQueryRequest`` of stored query ``query_id`` with ``params``."""
    request = etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest",
                            nsmap={"query": NS_QUERY, "rim": NS_RIM})
    etree.SubElement(request, f"{{{NS_QUERY}}}ResponseOption",
                     returnType=str(return_type), returnComposedObjects="true")
    query = etree.SubElement(request, f"{{{NS_RIM}}}AdhocQuery", id=query_id)
    for name, values in params:
        slot = etree.SubElement(query, f"{{{NS_RIM}}}Slot", name=name)
        value_list = etree.SubElement(slot, f"{{{NS_RIM}}}ValueList")
        for value in values:
            etree.SubElement(value_list, f"{{{NS_RIM}}}Value").text = value
    return request


class RegistryFault(Exception):
    """The registry answered with a SOAP Fault."""


def _body(content: bytes) -> etree._Element:
    envelope = parse_xml(content, max_bytes=_MAX_RESPONSE)
    body = envelope.find(f"{{{SOAP12_ENV}}}Body")
    if body is None or len(body) == 0:
        raise RegistryFault("the registry answered without a SOAP Body")
    if body[0].tag == f"{{{SOAP12_ENV}}}Fault":
        reason = body[0].findtext(f".//{{{SOAP12_ENV}}}Text") or "SOAP Fault"
        raise RegistryFault(reason)
    return body[0]


def quote(value: str) -> str:
    """A stored-query string value: single-quoted, embedded quotes doubled (ITI TF-2 §3.18.4.1.2.3.5)."""
    return "'" + value.replace("'", "''") + "'"


def quote_list(values: Sequence[str]) -> str:
    """A stored-query list value ``('a','b')``."""
    return "(" + ",".join(quote(v) for v in values) + ")"
