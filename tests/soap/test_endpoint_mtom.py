"""MTOM/XOP through the endpoint over real HTTP: attachments in and out, encoding mirrored."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import os
from email.message import MIMEPart
from pathlib import Path
from urllib.parse import unquote

import httpx
from lxml import etree

from xds.soap import SOAP_CONTENT_TYPE, parse_xml
from xds.soap.ns import SOAP12_ENV, WSA, XOP

from . import app
from .app import DOWNLOAD, T, base64_lines, envelope, multipart

NS = {"env": SOAP12_ENV, "wsa": WSA, "t": T, "xop": XOP}
PATH = "/xds/registry"
ROOT_HEADERS = {
    "Content-Type": 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
    "Content-Transfer-Encoding": "binary",
    "Content-ID": "<0.urn:uuid:root@apache.org>",
}
MTOM_TYPE = (
    'multipart/related; boundary=MIMEBoundary_test; type="application/xop+xml"; '
    'start="<0.urn:uuid:root@apache.org>"; start-info="application/soap+xml"; '
    'action="urn:ignored"'
)


def _split(response: httpx.Response) -> tuple[MIMEPart, list[MIMEPart]]:
    """Root part and attachment parts of an MTOM response, read with the stdlib MIME parser."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related")
    assert 'type="application/xop+xml"' in content_type
    assert 'start-info="application/soap+xml"' in content_type
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + response.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    root, *rest = message.iter_parts()
    start = str(message.get_param("start"))
    assert root["Content-ID"] == (start if start.startswith("<") else f"<{start}>")
    assert root.get_content_type() == "application/xop+xml"
    return root, rest


def _envelope_of(part: MIMEPart, schema: etree.XMLSchema) -> etree._Element:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    root = parse_xml(payload, max_bytes=1 << 24)
    schema.assertValid(root)
    return root


def test_mtom_request_attachments_reach_handler_and_are_removed(
    client: httpx.Client, envelope_schema: etree.XMLSchema, spool_dir: Path
) -> None:
    binary, encoded, inline = os.urandom(100_000), os.urandom(5_000), b"inline document"
    body = (
        "<t:Put>"
        '<t:Document><xop:Include href="cid:1.urn%3Auuid%3Adoc%40apache.org"/></t:Document>'
        '<t:Document><xop:Include href="cid:2@test"/></t:Document>'
        f"<t:Document>{base64.b64encode(inline).decode()}</t:Document>"
        "</t:Put>"
    )
    data = multipart(
        [
            (ROOT_HEADERS, envelope(body, action=T + ":Attachments")),
            (
                {"Content-Type": "application/pdf", "Content-ID": "<1.urn:uuid:doc@apache.org>"},
                binary,
            ),
            (
                {
                    "Content-Type": "image/png",
                    "Content-Transfer-Encoding": "base64",
                    "Content-ID": "<2@test>",
                },
                base64_lines(encoded),
            ),
        ]
    )
    app.received_paths.clear()
    response = client.post(PATH, content=data, headers={"Content-Type": MTOM_TYPE})
    assert response.status_code == 200
    root_part, attachments = _split(response)
    assert attachments == []
    reply = _envelope_of(root_part, envelope_schema)
    assert reply.findtext("env:Header/wsa:Action", namespaces=NS) == T + ":AttachmentsResponse"
    seen = reply.find("env:Body/t:Seen", NS)
    assert seen is not None and seen.get("mtom") == "true"
    parts = [dict(p.attrib) for p in seen]
    expected = [
        ("1.urn:uuid:doc@apache.org", "application/pdf", binary, "false"),
        ("2@test", "image/png", encoded, "false"),
        ("", "application/octet-stream", inline, "true"),
    ]
    for part, (cid, ctype, content, is_inline) in zip(parts, expected, strict=True):
        assert part["cid"] == cid and part["type"] == ctype and part["inline"] == is_inline
        assert part["size"] == str(len(content))
        assert part["sha1"] == hashlib.sha1(content).hexdigest()
        assert part["sha256"] == hashlib.sha256(content).hexdigest()
        assert part["spooled"] == "true"
    assert len(app.received_paths) == 3
    assert not any(p.exists() for p in app.received_paths)
    assert list(spool_dir.iterdir()) == []


def test_simple_soap_request_gets_simple_soap_reply_with_inline_base64(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    document = os.urandom(2_000)
    body = f"<t:Put><t:Document>{base64_lines(document).decode()}</t:Document></t:Put>"
    response = client.post(
        PATH,
        content=envelope(body, action=T + ":Attachments"),
        headers={"Content-Type": SOAP_CONTENT_TYPE},
    )
    assert response.headers["content-type"] == SOAP_CONTENT_TYPE
    reply = parse_xml(response.content, max_bytes=1 << 20)
    part = reply.find("env:Body/t:Seen/t:Part", NS)
    assert part is not None and part.get("sha1") == hashlib.sha1(document).hexdigest()


def test_mtom_request_gets_mtom_reply(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    data = multipart([(ROOT_HEADERS, envelope("<t:Ping>mtom</t:Ping>"))])
    response = client.post(PATH, content=data, headers={"Content-Type": MTOM_TYPE})
    assert response.status_code == 200
    root_part, _ = _split(response)
    reply = _envelope_of(root_part, envelope_schema)
    assert reply.findtext("env:Body/t:Ping", namespaces=NS) == "mtom"


def test_mtom_operation_answers_mtom_with_attachment_and_length(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    response = client.post(
        PATH,
        content=envelope("<t:Download/>", action=T + ":Download"),
        headers={"Content-Type": SOAP_CONTENT_TYPE},
    )
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    root_part, (attachment,) = _split(response)
    reply = _envelope_of(root_part, envelope_schema)
    include = reply.find("env:Body/t:DownloadResponse/t:Document/xop:Include", NS)
    assert include is not None
    href = include.get("href", "")
    assert href == "cid:doc%231%2F%7Bx%7D@xds.test"  # RFC 2392 percent-encoding
    assert f"<{unquote(href.removeprefix('cid:'))}>" == attachment["Content-ID"]
    assert attachment.get_payload(decode=True) == DOWNLOAD


def test_broken_mtom_request_is_fault_and_leaves_spool_empty(
    client: httpx.Client, envelope_schema: etree.XMLSchema, spool_dir: Path
) -> None:
    data = multipart(
        [(ROOT_HEADERS, envelope("<t:Ping/>")), ({"Content-ID": "<a@x>"}, b"z" * 50_000)]
    )
    response = client.post(PATH, content=data[:-100], headers={"Content-Type": MTOM_TYPE})
    assert response.status_code == 400
    root_part, _ = _split(response)
    fault = _envelope_of(root_part, envelope_schema).find("env:Body/env:Fault", NS)
    assert fault is not None
    assert list(spool_dir.iterdir()) == []
