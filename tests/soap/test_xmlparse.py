"""The hardened parser: every limit and attack has its own test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xds.soap import XmlError, parse_xml, parse_xml_chunks

XXE = (
    b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<foo>&xxe;</foo>"
)
# The classic "billion laughs": 10 levels of 10 references, 10^9 "lol" if expanded.
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
    + b"]><lolz>&lol9;</lolz>"
)


def test_well_formed_document_parses() -> None:
    root = parse_xml(b"<a><b>x</b></a>", max_bytes=100)
    assert root.findtext("b") == "x"


def test_chunks_parse_without_joining() -> None:
    root = parse_xml_chunks([b"<a><b>", b"x</b", b"></a>"], max_bytes=100)
    assert root.findtext("b") == "x"


@pytest.mark.parametrize(
    "data",
    [b"<a><b></a>", b"", b"not xml", b"<a>&undeclared;</a>", b"<a/><b/>"],
    ids=["mismatch", "empty", "text", "undeclared-entity", "two-roots"],
)
def test_malformed_xml_is_refused(data: bytes) -> None:
    with pytest.raises(XmlError):
        parse_xml(data, max_bytes=1000)


def test_xxe_external_entity_refused_without_reading_the_file() -> None:
    with pytest.raises(XmlError) as info:
        parse_xml(XXE, max_bytes=10_000)
    assert "root:" not in str(info.value)


def test_billion_laughs_refused() -> None:
    with pytest.raises(XmlError):
        parse_xml(BILLION_LAUGHS, max_bytes=10_000)


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE a><a/>",
        b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>',
        b'<!DOCTYPE a SYSTEM "http://127.0.0.1:1/x.dtd"><a/>',
        b'<!DOCTYPE a [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><a/>',
        b"<!DOCTYPE a [<!ELEMENT a EMPTY>]><a/>",
    ],
    ids=["bare", "external-file", "external-http", "parameter-entity", "internal-subset"],
)
def test_any_doctype_refused(data: bytes) -> None:
    with pytest.raises(XmlError, match="DOCTYPE|refused|not well-formed"):
        parse_xml(data, max_bytes=10_000)


def test_oversize_refused() -> None:
    with pytest.raises(XmlError, match="exceeds 10 bytes"):
        parse_xml(b"<a>0123456789</a>", max_bytes=10)


def test_oversize_refused_while_feeding() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"<a>"
        while True:  # an endless body must stop at the cap
            yield b"x" * 1000

    with pytest.raises(XmlError, match="exceeds"):
        parse_xml_chunks(chunks(), max_bytes=10_000)
