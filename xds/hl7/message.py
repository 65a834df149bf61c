"""Reading HL7 v2 messages: a frame's bytes decoded by MSH-18, parsed by python-hl7; MSH and field access."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import hl7

from xds.hl7.errors import AckCode, ErrorCode, HL7Error, Location

__all__ = ["CHARSETS", "VERSIONS", "Header", "codec_for", "decode", "peek_header", "value",
           "repetitions", "segments", "require_version"]

#: MSH-18 Character Set (HL7 table 0211) -> Python codec. ISO 2022 code switching within a
#: message (MSH-18 repetitions 2..n, ISO IR87/IR159) and UTF-16/32 (whose bytes can contain
#: the MLLP end block) are not supported.
CHARSETS: dict[str, str] = {
    "ASCII": "ascii", "ISO IR6": "ascii",
    "8859/1": "iso8859-1", "ISO IR100": "iso8859-1",
    "8859/2": "iso8859-2", "ISO IR101": "iso8859-2",
    "8859/3": "iso8859-3", "ISO IR109": "iso8859-3",
    "8859/4": "iso8859-4", "ISO IR110": "iso8859-4",
    "8859/5": "iso8859-5", "ISO IR144": "iso8859-5",
    "8859/6": "iso8859-6", "ISO IR127": "iso8859-6",
    "8859/7": "iso8859-7", "ISO IR126": "iso8859-7",
    "8859/8": "iso8859-8", "ISO IR138": "iso8859-8",
    "8859/9": "iso8859-9", "ISO IR148": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8", "ISO IR192": "utf-8",
    "GB 18030-2000": "gb18030", "KS X 1001": "euc_kr", "BIG-5": "big5",
}

#: The HL7 v2 versions (MSH-12) this implementation reads and writes.
VERSIONS = ("2.3.1", "2.5")

_LINE_ENDS = re.compile(r"\r\n|\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """What the MSH of a received message says; ``context`` is the parsed python-hl7 message
    whose separators (MSH-1, MSH-2) the answer reuses. Application, facility and control id
    are kept as sent (escaped) so that an answer echoes them verbatim."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_code: str = ""
    trigger_event: str = ""
    message_structure: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""
    charset: str = ""
    context: Any = None


def codec_for(charset: str) -> str | None:
    """The Python codec of an MSH-18 value; ``""`` (none given) is UTF-8. None when unknown."""
    if not charset:
        return "utf-8"
    return CHARSETS.get(charset.strip().upper())


def decode(frame: bytes) -> tuple[Any, Header]:
    """The python-hl7 message in one MLLP frame's content, and its MSH.

    The character set is MSH-18's; without one, UTF-8 and, failing that, ISO 8859-1 (HL7's
    default is ASCII, but feeds that send 8-bit names without MSH-18 are common, and
    refusing them loses patients). Raises HL7Error with AR: not HL7 (100), unknown MSH-18
    (103), bytes not valid in it (102).
    """
    data = frame.lstrip(b"\r\n\t ")
    if not data.startswith(b"MSH") or len(data) < 8:
        raise HL7Error(ErrorCode.SegmentSequenceError, "not an HL7 v2 message: no MSH segment",
                       [Location("MSH")], ack=AckCode.AR)
    if not _encoding_characters_valid(data):
        raise HL7Error(ErrorCode.DataTypeError, "MSH-1/MSH-2: the field separator and encoding "
                       "characters must be distinct punctuation (|^~\\&)",
                       [Location("MSH", 1, 2)], ack=AckCode.AR)
    header = peek_header(data)
    charset = header.charset if header else ""
    codec = codec_for(charset)
    if codec is None:
        raise HL7Error(ErrorCode.TableValueNotFound, f"unsupported character set {charset!r}",
                       [Location("MSH", 1, 18)], ack=AckCode.AR)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        if charset:
            raise HL7Error(ErrorCode.DataTypeError, f"bytes not valid in {charset}: {exc.reason}",
                           [Location("MSH", 1, 18)], ack=AckCode.AR) from None
        text = data.decode("iso8859-1")
    # Segments end with CR; some senders use CRLF or LF (which no field may contain
    # unescaped) or leave empty lines, on which python-hl7's segment lookup fails.
    text = "\r".join(s for s in _LINE_ENDS.sub("\r", text).split("\r") if s.strip())
    try:
        message = hl7.parse(text)
        parsed = _header(message)
    except Exception as exc:  # python-hl7 raises assorted errors on malformed input
        raise HL7Error(ErrorCode.SegmentSequenceError, f"unparseable HL7 v2 message: {exc}",
                       [Location("MSH")], ack=AckCode.AR) from None
    return message, parsed


def peek_header(frame: bytes) -> Header | None:
    """The MSH of ``frame`` read on its own (for answering a frame that cannot be decoded
    whole), or None when there is none."""
    data = frame.lstrip(b"\r\n\t ")
    if not data.startswith(b"MSH") or len(data) < 8 or not _encoding_characters_valid(data):
        return None
    end = min((i for i in (data.find(b"\r"), data.find(b"\n")) if i >= 0), default=len(data))
    try:
        return _header(hl7.parse(data[:end].decode("iso8859-1")))
    except Exception:
        return None


def _encoding_characters_valid(data: bytes) -> bool:
    """MSH-1 and MSH-2: 4 encoding characters (5 from v2.7), all distinct printable
    punctuation; python-hl7 would otherwise parse on letters or a missing separator."""
    end = data.find(data[3:4], 4)
    chars = data[3:end] if end > 0 else b""
    return (5 <= len(chars) <= 6 and len(set(chars)) == len(chars)
            and all(0x21 <= c <= 0x7E and not chr(c).isalnum() for c in chars))


def _header(message: Any) -> Header:
    msh = message.segment("MSH")
    return Header(
        sending_application=_raw(msh, 3), sending_facility=_raw(msh, 4),
        receiving_application=_raw(msh, 5), receiving_facility=_raw(msh, 6),
        message_code=value(msh, 9, 1, 1).strip().upper(),
        trigger_event=value(msh, 9, 1, 2).strip().upper(),
        message_structure=value(msh, 9, 1, 3).strip().upper(),
        control_id=_raw(msh, 10), processing_id=value(msh, 11, 1, 1),
        version=value(msh, 12, 1, 1).strip(), charset=value(msh, 18, 1).strip(),
        context=message)


def _raw(segment: Any, field: int) -> str:
    """A field as sent, still escaped ("" when absent)."""
    return str(segment[field]) if field < len(segment) else ""


def value(segment: Any, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """One unescaped value of ``segment`` (python-hl7's ``extract_field``); "" when absent.

    ``value(pid, 5, 1, 2)`` is PID-5.2, the given name of the first repetition.
    """
    try:
        return str(segment.extract_field(1, field, rep, comp, sub))
    except IndexError:  # python-hl7: the path goes deeper than the value ("DOE" has no PID-5.2)
        return ""


def repetitions(segment: Any, field: int) -> int:
    """How many repetitions ``field`` of ``segment`` has (0 when empty or absent)."""
    if field >= len(segment) or not str(segment[field]):
        return 0
    return len(segment[field])


def segments(message: Any, segment_id: str) -> list[Any]:
    """Every ``segment_id`` segment of ``message``, in order ([] when none)."""
    return [s for s in message if str(s[0]) == segment_id]


def require_version(header: Header, versions: tuple[str, ...]) -> None:
    """Raise HL7Error AR 203 at MSH-12 unless ``header.version`` is one of ``versions``."""
    if header.version not in versions:
        raise HL7Error(ErrorCode.UnsupportedVersionId,
                       f"HL7 version {header.version or '(none)'} is not supported for "
                       f"{header.message_code} {header.trigger_event}; use {' or '.join(versions)}",
                       [Location("MSH", 1, 12)], ack=AckCode.AR)
