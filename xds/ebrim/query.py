"""Parse a ``query:AdhocQueryRequest``, decoding its Slot values (ITI TF-2 §3.18.4.1.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xds.ebrim.rim import RIM, Element
from xds.ebrim.vocabulary import EBRIM_21_NAMESPACES, NS_QUERY, ReturnType
from xds.model.errors import ErrorCode, XdsError

__all__ = ["QuerySlot", "AdhocQueryRequest", "parse_adhoc_query_request", "decode_value",
           "decode_values"]

_QUERY = f"{{{NS_QUERY}}}"

#: returnType values answered as LeafClass. ``RegistryObject`` is the query.xsd default, so a
#: schema-aware client that left the attribute out sends it; a LeafClass object carries every
#: RegistryObject attribute, so answering with LeafClass serves it.
_RETURN_TYPES = {
    ReturnType.LeafClass.value: ReturnType.LeafClass,
    "RegistryObject": ReturnType.LeafClass,
    ReturnType.ObjectRef.value: ReturnType.ObjectRef,
}


@dataclass(frozen=True, slots=True)
class QuerySlot:
    """One ``rim:Slot`` of the AdhocQuery: its name and decoded values (all rim:Value of it)."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AdhocQueryRequest:
    """A stored-query request: query id, return type, ``AdhocQuery/@home`` and the Slots in
    document order; a repeated Slot stays a separate entry (AND semantics, §3.18.4.1.2.3.6)."""

    query_id: str
    return_type: ReturnType
    home: str | None
    slots: tuple[QuerySlot, ...]


def _request_error(context: str) -> XdsError:
    # Not a metadata or parameter problem: the request itself is unusable, and ITI-18 has no
    # more specific code than XDSRegistryError for that (ITI TF-3 Table 4.2.4.1-2).
    return XdsError(ErrorCode.XDSRegistryError, context)


def parse_adhoc_query_request(root: Element) -> AdhocQueryRequest:
    """The stored query asked for by ``root``.

    A missing ResponseOption or returnType, or returnType ``RegistryObject``, means LeafClass.
    Raises XdsError ``XDSRegistryError`` for a root that is not an ebRS 3.0 AdhocQueryRequest
    (ebRIM 2.1 included), a missing AdhocQuery, an unnamed Slot or a returnType other than
    LeafClass/ObjectRef; ``XDSUnknownStoredQuery`` for a missing query id;
    ``XDSRegistryMetadataError`` for a Slot value that cannot be decoded.
    """
    tag = root.tag if isinstance(root.tag, str) else ""
    if any(tag.startswith(f"{{{ns}}}") for ns in EBRIM_21_NAMESPACES):
        raise _request_error("ebRIM/ebRS 2.1 (XDS.a) query is not accepted; use ebRS 3.0 "
                             "query:AdhocQueryRequest")
    if tag != _QUERY + "AdhocQueryRequest":
        raise _request_error(f"expected query:AdhocQueryRequest, got {tag or 'no element'}")

    return_type = ReturnType.LeafClass
    option = root.find(_QUERY + "ResponseOption")
    if option is not None:
        raw_type = (option.get("returnType") or "RegistryObject").strip()
        if raw_type not in _RETURN_TYPES:
            raise _request_error(f"ResponseOption returnType {raw_type} is not supported; "
                                 "use LeafClass or ObjectRef")
        return_type = _RETURN_TYPES[raw_type]

    query = root.find(RIM + "AdhocQuery")
    if query is None:
        raise _request_error("AdhocQueryRequest has no rim:AdhocQuery")
    query_id = (query.get("id") or "").strip()
    if not query_id:
        raise XdsError(ErrorCode.XDSUnknownStoredQuery, "rim:AdhocQuery has no id")
    home = (query.get("home") or "").strip() or None

    slots: list[QuerySlot] = []
    for slot in query.iterchildren(RIM + "Slot"):
        name = (slot.get("name") or "").strip()
        if not name:
            raise _request_error("AdhocQuery Slot without a name")
        texts = [v.text or "" for v in slot.iterfind(f"{RIM}ValueList/{RIM}Value")]
        try:
            values = decode_values(texts)
        except ValueError as exc:
            raise XdsError(ErrorCode.XDSRegistryMetadataError, f"{name}: {exc}") from None
        slots.append(QuerySlot(name=name, values=tuple(values)))
    return AdhocQueryRequest(query_id=query_id, return_type=return_type, home=home,
                             slots=tuple(slots))


def decode_values(texts: Sequence[str]) -> list[str]:
    """The values of one Slot: its ``rim:Value`` texts decoded and concatenated.

    A long list may be split over several Values (§3.18.4.1.2.3.5); they form one list.
    Raises ValueError for a malformed Value.
    """
    values: list[str] = []
    for text in texts:
        values.extend(decode_value(text))
    return values


def decode_value(text: str) -> list[str]:
    """The values encoded in one ``rim:Value`` text (ITI TF-2 §3.18.4.1.2.3.5).

    ``'a'`` -> [a] with ``''`` an embedded quote; ``('a','b')`` -> [a, b], split on commas
    outside quotes; ``200412252300`` (numbers, unquoted) -> [200412252300]. Lenient on receipt:
    an unquoted single value is taken as it stands, unquoted list items likewise. Empty text
    means no value. Raises ValueError for an unterminated quote, text after a closing quote,
    an empty list item, or a list missing its closing parenthesis.
    """
    body = text.strip()
    if not body:
        return []
    if body.startswith("("):
        if not body.endswith(")"):
            raise ValueError(f"list value {_show(text)} lacks its closing parenthesis")
        return _items(body[1:-1], text)
    if body.startswith("'"):
        value, end = _quoted(body, 0, text)
        if body[end:].strip():
            raise ValueError(f"unexpected text after the closing quote in {_show(text)}")
        return [value]
    return [body]


def _items(inner: str, text: str) -> list[str]:
    items: list[str] = []
    i, n = 0, len(inner)
    if not inner.strip():
        return items
    while True:
        while i < n and inner[i].isspace():
            i += 1
        if i < n and inner[i] == "'":
            value, i = _quoted(inner, i, text)
        else:
            comma = inner.find(",", i)
            end = n if comma < 0 else comma
            value = inner[i:end].strip()
            if not value:
                raise ValueError(f"empty item in list value {_show(text)}")
            if "'" in value:
                raise ValueError(f"stray quote in list item {value!r} of {_show(text)}")
            i = end
        items.append(value)
        while i < n and inner[i].isspace():
            i += 1
        if i >= n:
            return items
        if inner[i] != ",":
            raise ValueError(f"expected ',' between list items in {_show(text)}, "
                             f"found {inner[i]!r}")
        i += 1


def _quoted(s: str, start: int, text: str) -> tuple[str, int]:
    """The string quoted at ``s[start]`` (``''`` -> ``'``) and the index after its closing quote."""
    out: list[str] = []
    i, n = start + 1, len(s)
    while i < n:
        ch = s[i]
        if ch == "'":
            if i + 1 < n and s[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ValueError(f"unterminated quote in {_show(text)}")


def _show(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
