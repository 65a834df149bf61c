"""Namespace URIs and fixed URIs of SOAP 1.2, WS-Addressing 1.0 and XOP used by the SOAP layer."""

from __future__ import annotations

__all__ = [
    "SOAP11_ENV",
    "SOAP12_ENV",
    "WSA",
    "WSSE",
    "WSA_ANONYMOUS",
    "WSA_FAULT_ACTION",
    "WSA_SOAP_FAULT_ACTION",
    "XOP",
    "XMIME",
    "XML",
    "ROLE_NEXT",
    "ROLE_NONE",
    "ROLE_ULTIMATE_RECEIVER",
    "CHUNK_SIZE",
    "qname",
]

SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
#: WS-Security 1.0 secext (wsse:Security header, fault subcodes of SOAP Message Security §12).
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
XOP = "http://www.w3.org/2004/08/xop/include"
XMIME = "http://www.w3.org/2005/05/xmlmime"
XML = "http://www.w3.org/XML/1998/namespace"

#: wsa:Address of a synchronous reply (IHE_WSA102).
WSA_ANONYMOUS = WSA + "/anonymous"
#: wsa:Action of a fault defined by WS-Addressing 1.0 SOAP Binding §6.
WSA_FAULT_ACTION = WSA + "/fault"
#: wsa:Action of any other SOAP fault (WS-Addressing 1.0 SOAP Binding §6).
WSA_SOAP_FAULT_ACTION = WSA + "/soap/fault"

#: SOAP 1.2 Part 1 §5.2.2 roles; a header block without env:role targets the ultimate receiver.
ROLE_NEXT = SOAP12_ENV + "/role/next"
ROLE_NONE = SOAP12_ENV + "/role/none"
ROLE_ULTIMATE_RECEIVER = SOAP12_ENV + "/role/ultimateReceiver"

#: The one chunk size for streaming bodies and attachments in this layer.
CHUNK_SIZE = 64 * 1024


def qname(namespace: str, local: str) -> str:
    """The Clark-notation name ``{namespace}local`` that lxml uses for tags."""
    return f"{{{namespace}}}{local}"
