"""Helpers of the PIX Manager tests: HL7 v2 sample messages, an MLLP exchange, the store's truth.

Messages follow the ITI TF samples (ITI-8 ``ADT^A01`` of §3.8, ITI-9 ``QBP^Q23`` of §3.9) with
fresh ids per test: the session's database is shared with every other test module.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Sequence
from typing import Any

import hl7
import hl7.client
from sqlalchemy import Engine, func, select

from xds.store.tables import mpi_identifier

__all__ = [
    "AFFINITY", "GREEN", "BLUE", "RED", "new_value", "cx", "adt", "qbp", "exchange",
    "exchange_raw", "read_frame", "field", "identifier_rows", "count_identifiers", "frame",
]

AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"  # IHERED, the affinity domain of Settings
GREEN = "1.3.6.1.4.1.21367.13.20.2000"  # IHEGREEN
BLUE = "1.3.6.1.4.1.21367.13.20.3000"  # IHEBLUE
RED = "1.3.6.1.4.1.21367.13.20.4000"  # a domain no test feeds: unknown to every query

TIMEOUT = 15.0


def new_value(prefix: str = "P") -> str:
    """A patient id value no other test uses."""
    return f"{prefix}{secrets.token_hex(6).upper()}"


def cx(value: str, oid: str, namespace: str = "") -> str:
    """``value^^^NS&OID&ISO``."""
    return f"{value}^^^{namespace}&{oid}&ISO"


def adt(trigger: str, pid3: str, *, name: str = "DOE^JANE", birth: str = "19800101",
        sex: str = "F", version: str = "2.3.1", control_id: str | None = None,
        charset: str = "", mrg1: str | None = None, extra: Sequence[str] = (),
        omit: Sequence[str] = ()) -> str:
    """An ITI-8 ADT message (``A40`` with an MRG when ``mrg1`` is given); ``omit`` drops
    segments by name, ``extra`` appends segments."""
    structure = "ADT_A39" if trigger == "A40" else "ADT_A01"
    msh = (f"MSH|^~\\&|ADT|HOSP|PIXMGR|XDS|20240101120000||ADT^{trigger}^{structure}|"
           f"{control_id or new_value('M')}|P|{version}")
    if charset:
        msh += "||||||" + charset
    segments = [msh, "EVN||20240101120000",
                f"PID|||{pid3}||{name}||{birth}|{sex}|||1 MAIN ST^^SPRINGFIELD^IL^62701"]
    segments.append(f"MRG|{mrg1}" if mrg1 is not None else "PV1||N")
    segments += extra
    return "\r".join(s for s in segments if s[:3] not in omit) + "\r"


def qbp(pid: str, domains: str = "", *, tag: str | None = None, version: str = "2.5",
        control_id: str | None = None) -> str:
    """An ITI-9 QBP^Q23 for QPD-3 ``pid`` and QPD-4 ``domains``."""
    return "\r".join([
        f"MSH|^~\\&|CONSUMER|HOSP|PIXMGR|XDS|20240101120000||QBP^Q23^QBP_Q21|"
        f"{control_id or new_value('Q')}|P|{version}",
        f"QPD|IHE PIX Query|{tag or new_value('T')}|{pid}|{domains}",
        "RCP|I"]) + "\r"


def frame(data: bytes) -> bytes:
    """``data`` in an MLLP frame."""
    return b"\x0b" + data + b"\x1c\x0d"


def read_frame(sock: socket.socket) -> bytes:
    """The content of the next MLLP frame on ``sock``; b"" when the peer closed first.
    Reads byte by byte so that a following frame stays in the socket (answers are small)."""
    data = b""
    while not data.endswith(b"\x1c\x0d"):
        chunk = sock.recv(1)
        if not chunk:
            return b""
        data += chunk
    assert data.startswith(b"\x0b"), data[:40]
    return data[1:-2]


def exchange(address: tuple[str, int], message: str | bytes, *, encoding: str = "utf-8",
             client: hl7.client.MLLPClient | None = None) -> Any:
    """Send ``message`` with python-hl7's MLLPClient and parse the answer (python-hl7)."""
    own = client is None
    client = client or hl7.client.MLLPClient(*address, encoding=encoding)
    client.socket.settimeout(TIMEOUT)
    try:
        data = client.send_message(message)
        while not data.endswith(b"\x1c\x0d"):  # MLLPClient reads one recv() only
            chunk = client.socket.recv(65536)
            assert chunk, "connection closed before the answer"
            data += chunk
    finally:
        if own:
            client.close()
    return hl7.parse(data[1:-2].decode(encoding))


def exchange_raw(sock: socket.socket, data: bytes) -> Any:
    """Send raw bytes, parse the next answer frame."""
    sock.sendall(data)
    answer = read_frame(sock)
    assert answer, "connection closed before the answer"
    return hl7.parse(answer.decode("utf-8"))


def field(message: Any, segment_id: str, number: int, occurrence: int = 0) -> str:
    """Field ``number`` of a segment as sent (escaped); "" when absent."""
    segment = message.segments(segment_id)[occurrence]
    return str(segment[number]) if number < len(segment) else ""


def identifier_rows(engine: Engine, value: str) -> list[Any]:
    """Every ``mpi_identifier`` row of ``value`` (any domain)."""
    with engine.connect() as conn:
        return list(conn.execute(select(mpi_identifier).where(mpi_identifier.c.value == value)))


def count_identifiers(engine: Engine) -> int:
    """How many ``mpi_identifier`` rows there are."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(mpi_identifier)).scalar_one())
