"""ITI-10 PIX Update Notification (ADT^A31, HL7 v2.5) to a PIX Consumer over MLLP (ITI TF-2a §3.10)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import hl7.mllp

from xds.config import Settings
from xds.hl7 import DEFAULT_CONTEXT, build_msh, decode, encode, format_cx, segment, segments, value
from xds.mpi.model import Person
from xds.model.values import now_dtm
from xds.security.credentials import Credentials

__all__ = ["build_iti10", "send_iti10", "NotificationRefused", "SEND_TIMEOUT"]

#: Seconds to connect, send and receive the ACK.
SEND_TIMEOUT = 30.0
_DEFAULT_PORT = 2575


class NotificationRefused(Exception):
    """The PIX Consumer did not answer AA."""


def build_iti10(person: Person, *, receiving_application: str = "",
                receiving_facility: str = "") -> str:
    """ADT^A31^ADT_A05 for ``person``: PID-3 = every linked identifier, PID-5 the empty-name
    convention ``~^^^^^^S`` (the notification carries identifiers, not demographics), PV1||N."""
    ctx = DEFAULT_CONTEXT
    ids = "~".join(format_cx(i.value, i.domain, ctx) for i in person.identifiers)
    charset = "" if ids.isascii() else "UNICODE UTF-8"
    return "\r".join([
        build_msh(ctx, message_type=("ADT", "A31", "ADT_A05"), version="2.5", charset=charset,
                  receiving=(receiving_application, receiving_facility)),
        segment(ctx, "EVN", "A31", now_dtm() + "+0000"),
        segment(ctx, "PID", "", "", ids, "", "~^^^^^^S"),
        segment(ctx, "PV1", "", "N"),
    ]) + "\r"


async def send_iti10(url: str, person: Person, settings: Settings) -> None:
    """Send ITI-10 for ``person`` to ``mllp://host[:port]`` (``mllps://``: over TLS, with this
    node's client certificate, the consumer verified against ``client_ca``/``tls_ca``) and wait
    for its ACK.

    Raises NotificationRefused unless MSA-1 is AA (or CA), OSError/TimeoutError when the
    consumer cannot be reached in SEND_TIMEOUT seconds.
    """
    target = urlsplit(url)
    if target.scheme not in ("mllp", "mllps") or not target.hostname:
        raise ValueError(f"not an mllp://host:port or mllps:// URL: {url}")
    tls = Credentials.of_settings(settings).tls_context() if target.scheme == "mllps" else None
    text = build_iti10(person)
    async with asyncio.timeout(SEND_TIMEOUT):
        reader, writer = await hl7.mllp.open_hl7_connection(
            target.hostname, target.port or _DEFAULT_PORT, ssl=tls,
            server_hostname=target.hostname if tls else None)
        try:
            writer.writeblock(encode(text, "UNICODE UTF-8" if not text.isascii() else ""))
            await writer.drain()
            block: bytes = await reader.readblock()
        finally:
            writer.close()
    message, _header = decode(block)
    msa = segments(message, "MSA")
    code = value(msa[0], 1) if msa else ""
    if code not in ("AA", "CA"):
        err = segments(message, "ERR")
        detail = (value(err[0], 8) or value(err[0], 3, 1, 2)) if err else ""
        raise NotificationRefused(f"{url} answered {code or 'no MSA'}" + (f": {detail}" if detail else ""))
