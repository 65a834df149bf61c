"""The MTOM encoder: framing, Content-Length, both iteration styles, round trip via the parser."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from xds.soap import (
    OutgoingAttachment,
    bytes_attachment,
    encode_mtom,
    file_attachment,
    read_multipart,
    resolve_xop,
    xop_include,
)
from xds.soap.mtom_encode import MtomStream


async def _collect(stream: MtomStream) -> bytes:
    return b"".join([chunk async for chunk in stream.aiter_bytes()])


def _stream(tmp_path: Path) -> tuple[MtomStream, bytes]:
    document = b"%PDF-1.4 " + bytes(range(256)) * 500
    path = tmp_path / "doc.pdf"
    path.write_bytes(document)
    attachments = [
        file_attachment(path, "doc#1/{x}@xds.test", "application/pdf"),
        bytes_attachment(b"second", "2@xds.test", "text/plain"),
    ]
    return encode_mtom(b"<env/>", attachments), document


def test_headers_name_the_soap12_mtom_package(tmp_path: Path) -> None:
    stream, _ = _stream(tmp_path)
    content_type = stream.headers["Content-Type"]
    assert content_type.startswith("multipart/related; boundary=")
    assert 'type="application/xop+xml"' in content_type
    assert 'start-info="application/soap+xml"' in content_type
    assert f'start="<{stream.root_id}>"' in content_type


def test_content_length_matches_and_both_iterations_agree(tmp_path: Path) -> None:
    stream, _ = _stream(tmp_path)
    body = asyncio.run(_collect(stream))
    assert int(stream.headers["Content-Length"]) == len(body)
    assert b"".join(stream.iter_bytes()) == body


def test_unknown_size_means_no_content_length() -> None:
    part = OutgoingAttachment("a@x", "text/plain", None, lambda: iter([b"abc"]))
    stream = encode_mtom(b"<env/>", [part])
    assert "Content-Length" not in stream.headers
    assert b"abc" in b"".join(stream.iter_bytes())


def test_async_sources_stream(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in (b"ab", b"cd"):
            yield piece

    stream = encode_mtom(b"<env/>", [OutgoingAttachment("a@x", "text/plain", 4, chunks)])
    assert b"\r\n\r\nabcd\r\n" in asyncio.run(_collect(stream))
    with pytest.raises(TypeError):
        b"".join(stream.iter_bytes())


def test_wrong_declared_size_is_an_error() -> None:
    part = OutgoingAttachment("a@x", "text/plain", 10, lambda: iter([b"abc"]))
    with pytest.raises(RuntimeError, match="declared 10"):
        b"".join(encode_mtom(b"<env/>", [part]).iter_bytes())


def test_email_parser_reads_the_parts(tmp_path: Path) -> None:
    stream, document = _stream(tmp_path)
    raw = f"Content-Type: {stream.content_type}\r\n\r\n".encode() + b"".join(stream.iter_bytes())
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    root, pdf, text = message.iter_parts()
    assert root["Content-ID"] == f"<{stream.root_id}>"
    assert root.get_content_type() == "application/xop+xml"
    assert root.get_param("type") == "application/soap+xml"
    assert root["Content-Transfer-Encoding"] == "binary"
    assert pdf.get_payload(decode=True) == document
    assert text["Content-ID"] == "<2@xds.test>"


def test_round_trip_through_the_parser_and_xop_include(tmp_path: Path) -> None:
    stream, document = _stream(tmp_path)

    async def run() -> bytes:
        message = await read_multipart(
            stream.aiter_bytes(), stream.content_type, tmp_path / "spool", 1000
        )
        element = etree.Element("Document")
        element.append(xop_include("doc#1/{x}@xds.test"))
        found = resolve_xop(element, message.attachments)
        assert found is not None and message.root == b"<env/>"
        data = found.path.read_bytes()
        message.close()
        return data

    assert asyncio.run(run()) == document
