"""SOAP 1.2 transport of xds: hardened XML, WS-Addressing, faults, streaming MTOM/XOP and the
ASGI endpoint (IHE ITI TF-2 App. V)."""

from .endpoint import SOAP_CONTENT_TYPE, Operation, SoapEndpoint, SoapRequest, SoapResponse
from .envelope import Envelope, build_envelope, new_message_id, parse_envelope
from .faults import FaultCode, SoapFault, build_fault
from .mtom import MtomMessage, decode_inline, read_multipart, resolve_xop
from .mtom_encode import (
    WRITE_SIZE,
    ChunkSource,
    MtomStream,
    OutgoingAttachment,
    bytes_attachment,
    coalesce,
    encode_mtom,
    file_attachment,
    new_content_id,
    xop_include,
)
from .ns import CHUNK_SIZE
from .spool import Attachment, SpoolWriter
from .wsa import (
    ACTION_NOT_SUPPORTED,
    INVALID_ADDRESSING_HEADER,
    MESSAGE_ADDRESSING_HEADER_REQUIRED,
    WSA_HEADERS,
    Addressing,
    parse_addressing,
)
from .wsdl import WsdlFiles, render_wsdl, request_origin, wsdl_files_app
from .xmlparse import XmlError, parse_xml, parse_xml_chunks

__all__ = [
    "ACTION_NOT_SUPPORTED",
    "Addressing",
    "Attachment",
    "CHUNK_SIZE",
    "ChunkSource",
    "Envelope",
    "FaultCode",
    "INVALID_ADDRESSING_HEADER",
    "MESSAGE_ADDRESSING_HEADER_REQUIRED",
    "MtomMessage",
    "MtomStream",
    "Operation",
    "OutgoingAttachment",
    "SOAP_CONTENT_TYPE",
    "SoapEndpoint",
    "SoapFault",
    "SoapRequest",
    "SoapResponse",
    "SpoolWriter",
    "WRITE_SIZE",
    "WSA_HEADERS",
    "WsdlFiles",
    "XmlError",
    "build_envelope",
    "build_fault",
    "bytes_attachment",
    "coalesce",
    "decode_inline",
    "encode_mtom",
    "file_attachment",
    "new_content_id",
    "new_message_id",
    "parse_addressing",
    "parse_envelope",
    "parse_xml",
    "parse_xml_chunks",
    "read_multipart",
    "render_wsdl",
    "request_origin",
    "resolve_xop",
    "wsdl_files_app",
    "xop_include",
]
