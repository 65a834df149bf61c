"""A toy Starlette app with one SoapEndpoint and the /wsdl tree, and request builders, for tests."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from pathlib import Path

from lxml import etree
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from xds.config import WSDL_DIR
from xds.soap import (
    Operation,
    SoapEndpoint,
    SoapRequest,
    SoapResponse,
    bytes_attachment,
    decode_inline,
    resolve_xop,
    wsdl_files_app,
    xop_include,
)
from xds.soap.ns import SOAP11_ENV, SOAP12_ENV, WSA, WSA_ANONYMOUS, XOP

__all__ = [
    "DOWNLOAD",
    "MAX_ENVELOPE",
    "REGISTRY_WSDL",
    "T",
    "build_app",
    "envelope",
    "multipart",
    "received_paths",
]

T = "urn:test:soap"
MAX_ENVELOPE = 64 * 1024
REGISTRY_WSDL = WSDL_DIR / "iti" / "wsdl" / "XDS.b_DocumentRegistry.wsdl"
#: Content of the attachment the Download action answers with.
DOWNLOAD = bytes(range(256)) * 1000
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"

#: Spool paths of every attachment a handler saw, to check they are gone afterwards.
received_paths: list[Path] = []


def _echo(request: SoapRequest) -> SoapResponse:
    return SoapResponse(body=request.body)


def _crash(request: SoapRequest) -> SoapResponse:
    raise RuntimeError("secret-internal-detail")


def _registry_error(exc: Exception) -> etree._Element:
    response = etree.Element(f"{{{RS}}}RegistryResponse", status=FAILURE, nsmap={"rs": RS})
    errors = etree.SubElement(response, f"{{{RS}}}RegistryErrorList")
    etree.SubElement(
        errors,
        f"{{{RS}}}RegistryError",
        errorCode="XDSRegistryError",
        codeContext="internal error",
        severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error",
    )
    return response


def _attachments(request: SoapRequest) -> SoapResponse:
    """Describe each <Document>: XOP part or inline base64, with size and hashes."""
    out = etree.Element(f"{{{T}}}Seen", mtom=str(request.mtom).lower())
    for document in request.body.iter(f"{{{T}}}Document"):
        attachment = resolve_xop(document, request.attachments)
        inline = attachment is None
        if attachment is None:
            attachment = decode_inline(document, request.spool_dir)
        received_paths.append(attachment.path)
        etree.SubElement(
            out,
            f"{{{T}}}Part",
            cid=attachment.content_id,
            type=attachment.content_type,
            size=str(attachment.size),
            sha1=attachment.sha1,
            sha256=attachment.sha256,
            inline=str(inline).lower(),
            spooled=str(attachment.path.parent == request.spool_dir).lower(),
        )
        if inline:
            attachment.path.unlink()
    return SoapResponse(body=out)


def _download(request: SoapRequest) -> SoapResponse:
    body = etree.Element(f"{{{T}}}DownloadResponse", nsmap={"t": T})
    etree.SubElement(body, f"{{{T}}}Document").append(xop_include("doc#1/{x}@xds.test"))
    part = bytes_attachment(DOWNLOAD, "doc#1/{x}@xds.test", "application/octet-stream")
    return SoapResponse(body=body, attachments=[part])


def _stored_query(request: SoapRequest) -> SoapResponse:
    response = etree.Element(
        f"{{{QUERY}}}AdhocQueryResponse", status=SUCCESS, nsmap={"query": QUERY}
    )
    etree.SubElement(response, f"{{{RIM}}}RegistryObjectList", nsmap={"rim": RIM})
    return SoapResponse(body=response)


def build_app(spool_dir: Path) -> Starlette:
    """The toy registry endpoint at /xds/registry and the WSDL tree at /wsdl."""
    operations = {
        T + ":Echo": Operation(_echo, T + ":EchoResponse", _registry_error),
        T + ":Crash": Operation(_crash, T + ":CrashResponse", _registry_error),
        T + ":Attachments": Operation(_attachments, T + ":AttachmentsResponse", _registry_error),
        T + ":Download": Operation(_download, T + ":DownloadResponse", _registry_error, mtom=True),
        "urn:ihe:iti:2007:RegistryStoredQuery": Operation(
            _stored_query, "urn:ihe:iti:2007:RegistryStoredQueryResponse", _registry_error
        ),
    }
    endpoint = SoapEndpoint(
        operations,
        wsdl=REGISTRY_WSDL,
        service_path="/xds/registry",
        max_envelope_bytes=MAX_ENVELOPE,
        spool_dir=spool_dir,
    )
    routes = [
        Route("/xds/registry", endpoint, methods=["GET", "POST", "HEAD"]),
        Mount("/wsdl", app=wsdl_files_app),
    ]
    return Starlette(routes=routes)


def envelope(
    body: str,
    *,
    action: str | None = T + ":Echo",
    message_id: str | None = "urn:uuid:11111111-2222-3333-4444-555555555555",
    extra_headers: str = "",
    reply_to_must_understand: bool = False,
    soap11: bool = False,
) -> bytes:
    """A request envelope in the shape of IHE App. V.9.2.1, with ``body`` as env:Body content."""
    ns = SOAP11_ENV if soap11 else SOAP12_ENV
    mu = ' env:mustUnderstand="1"' if reply_to_must_understand else ""
    headers = [
        "<wsa:To>http://127.0.0.1/xds/registry</wsa:To>",
        f"<wsa:MessageID>{message_id}</wsa:MessageID>" if message_id else "",
        f'<wsa:Action env:mustUnderstand="1">{action}</wsa:Action>' if action else "",
        f"<wsa:ReplyTo{mu}><wsa:Address>{WSA_ANONYMOUS}</wsa:Address></wsa:ReplyTo>",
        extra_headers,
    ]
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{ns}" xmlns:wsa="{WSA}" xmlns:t="{T}" xmlns:xop="{XOP}">'
        f"<env:Header>{''.join(headers)}</env:Header><env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def multipart(
    parts: Sequence[tuple[dict[str, str], bytes]], boundary: str = "MIMEBoundary_test"
) -> bytes:
    """A multipart body written out by hand: each part's headers, a blank line, its bytes."""
    out = bytearray()
    for headers, data in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def base64_lines(data: bytes) -> bytes:
    """MIME base64: 76 columns, CRLF line ends (RFC 2045 §6.8)."""
    text = base64.b64encode(data)
    return b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def repeat(chunk: bytes, count: int) -> Iterator[bytes]:
    """``chunk`` ``count`` times, without building the concatenation."""
    for _ in range(count):
        yield chunk
