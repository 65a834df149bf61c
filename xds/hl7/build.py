"""Building HL7 v2 messages: escaping, MSH, ACK with ERR segments, and encoding by MSH-18.

python-hl7 escapes and parses, but its ``create_ack`` covers only MSH + MSA, drops MSH-18 and
fails on an MSH-9 without components; one MSH builder here serves ACK, RSP^K23 and ADT^A31.
Answers reuse the request's separators, so echoed fields (QPD, MSH-10) are copied verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import hl7
from hl7.util import escape as _hl7_escape
from hl7.util import generate_message_control_id

from xds.hl7.errors import AckCode, ErrorSeverity, HL7Error
from xds.hl7.message import VERSIONS, Header, codec_for
from xds.model.values import now_dtm

__all__ = ["DEFAULT_CONTEXT", "escape", "segment", "build_msh", "reply_msh", "build_err",
           "build_ack", "encode"]

#: A python-hl7 container with the standard separators ``|^~\&`` (for messages we originate).
DEFAULT_CONTEXT: Any = hl7.Message()

_UTF8 = "UNICODE UTF-8"
_UNPRINTABLE = re.compile(r"([^\x20-\x7e]+)")


def escape(text: str, context: Any = DEFAULT_CONTEXT) -> str:
    """``text`` with the separators of ``context`` escaped (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``).

    python-hl7's ``escape`` also turns every non-ASCII character into ``\\Xhh\\`` of its code
    point, which is wrong past U+00FF and not what MSH-18 is for; non-ASCII text is kept
    as-is here and encoded in the message's character set by ``encode``. Control characters
    become ``\\Xhh\\``.
    """
    esc = str(context.esc)
    out = []
    for i, part in enumerate(_UNPRINTABLE.split(text)):
        if not i % 2:
            out.append(str(_hl7_escape(context, part)))
        else:  # python-hl7 would write "\\X 9\\" for a tab ("%2x"): hex escapes here
            out.append("".join(f"{esc}X{ord(c):02X}{esc}" if ord(c) < 0x20 or ord(c) == 0x7F
                               else c for c in part))
    return "".join(out)


def segment(context: Any, *fields: str) -> str:
    """One segment: ``fields`` (already escaped) joined by the field separator."""
    return str(context.separators[1]).join(fields)


def build_msh(context: Any, *, message_type: Sequence[str], version: str,
              sending: tuple[str, str] = ("XDS", "XDS"), receiving: tuple[str, str] = ("", ""),
              processing_id: str = "P", charset: str = "") -> str:
    """An MSH with a fresh control id (MSH-10) and the time now (MSH-7, UTC); ``sending`` and
    ``receiving`` are (application, facility), already escaped."""
    seps = str(context.separators)
    field, rep, comp, sub, esc = seps[1], seps[2], seps[3], seps[4], str(context.esc)
    fields = ["MSH" + field + comp + rep + esc + sub, *sending, *receiving,
              now_dtm() + "+0000", "",
              comp.join(message_type), str(generate_message_control_id()), processing_id,
              version]
    if charset:
        fields += ["", "", "", "", "", escape(charset, context)]
    return field.join(fields)


def build_err(context: Any, error: HL7Error) -> str:
    """``ERR||<ERR-2 locations>|<code>^<text>^HL70357|E||||<ERR-8 user message>`` (v2.5)."""
    rep, comp = str(context.separators[2]), str(context.separators[3])
    return segment(context, "ERR", "", rep.join(loc.render(comp) for loc in error.locations),
                   comp.join((str(int(error.code)), escape(error.code.text, context), "HL70357")),
                   ErrorSeverity.Error.value, "", "", "", escape(error.text, context))


def reply_msh(header: Header | None, message_type: Sequence[str]) -> str:
    """The MSH of an answer to ``header``: sender and receiver swapped, its version and
    character set (ours when it had none we speak)."""
    if header is None:
        return build_msh(DEFAULT_CONTEXT, message_type=message_type, version=VERSIONS[-1])
    return build_msh(
        header.context, message_type=message_type,
        version=header.version if header.version in VERSIONS else VERSIONS[-1],
        sending=(header.receiving_application, header.receiving_facility),
        receiving=(header.sending_application, header.sending_facility),
        processing_id=header.processing_id or "P",
        charset=header.charset if codec_for(header.charset) else "")


def build_ack(header: Header | None, code: AckCode, errors: Sequence[HL7Error] = ()) -> str:
    """``ACK^<trigger>^ACK`` answering ``header`` (None: a frame without a readable MSH):
    MSA-1 = ``code``, MSA-2 = the request's MSH-10, one ERR per error."""
    context = header.context if header else DEFAULT_CONTEXT
    trigger = escape(header.trigger_event, context) if header else ""
    segments = [reply_msh(header, ("ACK", trigger, "ACK") if trigger else ("ACK",)),
                segment(context, "MSA", code.value, header.control_id if header else "")]
    segments += [build_err(context, e) for e in errors]
    return "\r".join(segments) + "\r"


def encode(text: str, charset: str) -> bytes:
    """``text`` in the codec of ``charset`` (its MSH-18); a message that character set cannot
    carry goes out as UTF-8 with MSH-18 rewritten to ``UNICODE UTF-8``."""
    try:
        return text.encode(codec_for(charset) or "utf-8")
    except UnicodeEncodeError:
        message = hl7.parse(text)
        message.segment("MSH").assign_field(_UTF8, 18)
        return str(message).encode("utf-8")
