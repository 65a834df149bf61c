"""The one hardened XML parser of xds: no DTDs, no entities, no network, a size cap."""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

__all__ = ["XmlError", "parse_xml", "parse_xml_chunks"]


class XmlError(ValueError):
    """The input is not acceptable XML; the message is a short reason safe to send to a peer."""


class _RefuseAll(etree.Resolver):
    # Second line of defence: with lxml 6.1 / libxml2 2.14, passing collect_ids=False makes the
    # parser load external DTDs and parameter entities despite load_dtd=False; whatever option
    # drift happens next, no URL is ever fetched.
    def resolve(  # type: ignore[override]  # lxml passes a context the stubs omit
        self, system_url: str, public_id: str, context: object
    ) -> None:
        raise XmlError("external entity or DTD refused")


def _parser() -> etree.XMLParser:
    # A fresh parser per document: lxml parsers keep state and are not thread-safe.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )
    parser.resolvers.add(_RefuseAll())
    return parser


def parse_xml(data: bytes, *, max_bytes: int) -> etree._Element:
    """Parse one XML document held in memory and return its root element.

    Raises ``XmlError`` when ``data`` is larger than ``max_bytes``, not well-formed, or carries a
    DOCTYPE (which covers external entities (XXE) and entity bombs).
    """
    return parse_xml_chunks((data,), max_bytes=max_bytes)


def parse_xml_chunks(chunks: Iterable[bytes], *, max_bytes: int) -> etree._Element:
    """Like ``parse_xml``, fed chunk by chunk so the caller never joins a large body."""
    parser = _parser()
    total = 0
    try:
        for chunk in chunks:
            total += len(chunk)
            if total > max_bytes:
                raise XmlError(f"XML document exceeds {max_bytes} bytes")
            if chunk:
                parser.feed(chunk)
        if total == 0:
            raise XmlError("empty XML document")
        root: etree._Element = parser.close()
    except XmlError:
        raise
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"XML not well-formed: {_first_line(exc.msg)}") from None
    except etree.LxmlError as exc:
        raise XmlError(f"XML rejected: {_first_line(str(exc))}") from None
    docinfo = root.getroottree().docinfo
    # With resolve_entities=False nothing declared in a DTD is ever expanded, but a DOCTYPE has
    # no place in a SOAP message (SOAP 1.2 Part 1 §5) and refusing it closes the XXE/bomb door.
    doctype: str = docinfo.doctype  # type: ignore[attr-defined]  # missing from lxml-stubs
    declared = docinfo.internalDTD is not None or docinfo.externalDTD is not None
    if doctype or declared:
        raise XmlError("DOCTYPE/DTD is not allowed")
    return root


def _first_line(text: str | None) -> str:
    return (text or "syntax error").splitlines()[0][:200]
