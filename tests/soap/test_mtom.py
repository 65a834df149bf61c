"""Streaming MTOM/XOP reception in process: parts, encodings, Content-IDs, limits, memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from lxml import etree

from xds.soap import (
    CHUNK_SIZE,
    MtomMessage,
    SoapFault,
    decode_inline,
    read_multipart,
    resolve_xop,
)
from xds.soap.ns import XMIME, XOP

from .app import base64_lines, multipart

ROOT_HEADERS = {
    "Content-Type": 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
    "Content-Transfer-Encoding": "binary",
    "Content-ID": "<root.message@test>",
}
CT = (
    'multipart/related; boundary=MIMEBoundary_test; type="application/xop+xml"; '
    'start="<root.message@test>"; start-info="application/soap+xml"'
)


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _read(body: bytes, spool: Path, content_type: str = CT, chunk: int = 7) -> MtomMessage:
    """Parse ``body`` fed in tiny chunks, so every boundary and header straddles a write."""
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    return asyncio.run(read_multipart(_aiter(pieces), content_type, spool, 10_000))


def test_root_and_binary_and_base64_parts(tmp_path: Path) -> None:
    doc1, doc2 = b"\x00\x01binary\r\n--MIMEBoundary_tes", os.urandom(3000)
    body = multipart(
        [
            (ROOT_HEADERS, b"<root/>"),
            ({"Content-Type": "application/pdf", "Content-ID": "<1.urn:uuid:a@apache.org>"}, doc1),
            (
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Transfer-Encoding": "base64",
                    "Content-ID": "2@test",
                },
                base64_lines(doc2),
            ),
        ]
    )
    message = _read(body, tmp_path)
    assert message.root == b"<root/>"
    assert message.root_content_type == "application/xop+xml"
    first, second = message.attachments["1.urn:uuid:a@apache.org"], message.attachments["2@test"]
    assert first.path.read_bytes() == doc1 and first.content_type == "application/pdf"
    assert (second.size, second.sha1) == (len(doc2), hashlib.sha1(doc2).hexdigest())
    assert second.sha256 == hashlib.sha256(doc2).hexdigest()
    message.close()
    assert not first.path.exists() and not second.path.exists()


@pytest.mark.parametrize(
    "start", ['"<r@x>"', '"r@x"', "r@x", None], ids=["<>", "bare", "token", "none"]
)
def test_start_parameter_with_or_without_brackets(tmp_path: Path, start: str | None) -> None:
    body = multipart([({"Content-Type": "application/xop+xml", "Content-ID": "<r@x>"}, b"<root/>")])
    ct = 'multipart/related; boundary=MIMEBoundary_test; type="application/xop+xml"'
    message = _read(body, tmp_path, ct + (f"; start={start}" if start else ""))
    assert message.root == b"<root/>"


def test_root_found_by_start_even_when_not_first(tmp_path: Path) -> None:
    body = multipart(
        [
            ({"Content-Type": "text/plain", "Content-ID": "<a@x>"}, b"attachment"),
            (ROOT_HEADERS, b"<root/>"),
        ]
    )
    message = _read(body, tmp_path)
    assert message.root == b"<root/>" and list(message.attachments) == ["a@x"]
    message.close()


def test_xop_include_resolves_percent_encoded_cid(tmp_path: Path) -> None:
    body = multipart(
        [(ROOT_HEADERS, b"<root/>"), ({"Content-ID": "<1.urn:uuid:a@apache.org>"}, b"doc")]
    )
    message = _read(body, tmp_path)
    element = etree.fromstring(
        f'<Document><xop:Include xmlns:xop="{XOP}" href="cid:1.urn%3Auuid%3Aa%40apache.org"/>'
        "</Document>"
    )
    found = resolve_xop(element, message.attachments)
    assert found is not None and found.path.read_bytes() == b"doc"
    assert resolve_xop(etree.fromstring("<Document>ZG9j</Document>"), message.attachments) is None
    dangling = etree.fromstring(f'<D><xop:Include xmlns:xop="{XOP}" href="cid:nope"/></D>')
    with pytest.raises(SoapFault):
        resolve_xop(dangling, message.attachments)
    message.close()


def test_inline_base64_decodes_to_spool(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    text = base64_lines(data).decode()
    element = etree.fromstring(
        f'<Document xmlns:xmime="{XMIME}" xmime:contentType="image/jpeg">{text}</Document>'
    )
    attachment = decode_inline(element, tmp_path)
    assert attachment.path.read_bytes() == data
    assert (attachment.sha1, attachment.content_type) == (
        hashlib.sha1(data).hexdigest(),
        "image/jpeg",
    )
    with pytest.raises(SoapFault):
        decode_inline(etree.fromstring("<Document>not*base64</Document>"), tmp_path)


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (
            [({"Content-Type": "text/plain", "Content-ID": "<root.message@test>"}, b"x")],
            "root part",
        ),
        ([(ROOT_HEADERS, b"<root/>"), ({"Content-Type": "text/plain"}, b"x")], "Content-ID"),
        (
            [
                (ROOT_HEADERS, b"<root/>"),
                ({"Content-ID": "<a@x>"}, b"1"),
                ({"Content-ID": "a@x"}, b"2"),
            ],
            "duplicate",
        ),
        (
            [
                (ROOT_HEADERS, b"<root/>"),
                ({"Content-ID": "<a@x>", "Content-Transfer-Encoding": "base64"}, b"@@@@"),
            ],
            "base64",
        ),
        (
            [
                (ROOT_HEADERS, b"<root/>"),
                ({"Content-ID": "<a@x>", "Content-Transfer-Encoding": "quoted-printable"}, b"x"),
            ],
            "Transfer-Encoding",
        ),
        ([(ROOT_HEADERS, b"x" * 20_000)], "exceeds"),
    ],
    ids=["root-type", "no-cid", "duplicate-cid", "bad-base64", "qp", "root-too-big"],
)
def test_bad_messages_are_sender_faults_and_leave_no_files(
    tmp_path: Path, parts: list[tuple[dict[str, str], bytes]], reason: str
) -> None:
    with pytest.raises(SoapFault, match=reason) as info:
        _read(multipart(parts), tmp_path)
    assert info.value.code == "Sender"
    assert list(tmp_path.iterdir()) == []


def test_truncated_body_is_a_fault_and_leaves_no_files(tmp_path: Path) -> None:
    body = multipart([(ROOT_HEADERS, b"<root/>"), ({"Content-ID": "<a@x>"}, b"y" * 5000)])
    with pytest.raises(SoapFault, match="closing boundary"):
        _read(body[:-200], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_boundary_is_a_fault(tmp_path: Path) -> None:
    with pytest.raises(SoapFault, match="boundary"):
        _read(b"", tmp_path, 'multipart/related; type="application/xop+xml"')


def test_fifty_megabyte_attachment_streams_in_bounded_memory(tmp_path: Path) -> None:
    chunk = random.Random(7).randbytes(CHUNK_SIZE)
    count = 50 * 1024 * 1024 // CHUNK_SIZE
    head, tail = multipart([(ROOT_HEADERS, b"<root/>"), ({"Content-ID": "<big@x>"}, b"@@")]).split(
        b"@@"
    )
    expected = hashlib.sha1()
    for _ in range(count):
        expected.update(chunk)

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(count):
            # A fresh object per chunk, so a parser that kept references would be caught.
            yield chunk[:1] + chunk[1:]
        yield tail

    tracemalloc.start()
    try:
        message = asyncio.run(read_multipart(body(), CT, tmp_path, 10_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    big = message.attachments["big@x"]
    assert (big.size, big.sha1) == (count * CHUNK_SIZE, expected.hexdigest())
    assert big.path.stat().st_size == big.size
    assert peak < 4 * 1024 * 1024, f"parser held {peak} bytes"
    message.close()
