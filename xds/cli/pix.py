"""``xds pix``: PIX Source and Consumer over MLLP, ITI-8 feeds and ITI-9 queries (ITI TF-2 §3.8, §3.9)."""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from hl7.client import MLLPClient  # type: ignore[import-untyped, unused-ignore]

from xds.audit.clients import feed_events, pix_query_events
from xds.cli.options import (
    AuditUrl, ClientCa, ClientCert, ClientKey, DatabaseUrl, DataDir, client_trail,
    credentials_from,
)
from xds.clients.steps import failure_text
from xds.hl7.errors import AckCode
from xds.model.values import is_oid, now_dtm

__all__ = ["app", "split_messages", "pix_query_message"]

app = typer.Typer(no_args_is_help=True, help="Talk to the PIX Manager over MLLP (ITI-8, ITI-9).")

_VT, _FS, _CR = b"\x0b", b"\x1c", b"\r"
_LINE_END = re.compile(rb"\r\n|\n|\r")
_TEXT_LINE_END = re.compile(r"\r\n|\n|\r")

Host = Annotated[str, typer.Option("--host", help="PIX Manager address.")]
Port = Annotated[int, typer.Option("--port", envvar="XDS_MLLP_PORT", help="PIX Manager MLLP port.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each answer.")]
UseTls = Annotated[bool, typer.Option(
    "--tls", envvar="XDS_MLLP_TLS", help="MLLP over TLS (implied by --cert or --ca).")]


def split_messages(data: bytes) -> list[bytes]:
    """The HL7 v2 messages of a file: one starts at each MSH segment; segments end in CR, LF or
    CRLF (each made CR, as HL7 wants), blank lines and MLLP framing bytes are dropped.

    Raises ValueError for text before the first MSH.
    """
    messages: list[list[bytes]] = []
    for line in _LINE_END.split(data.replace(_VT, b"").replace(_FS, b"")):
        if not line.strip():
            continue
        if line.startswith(b"MSH"):
            messages.append([])
        elif not messages:
            raise ValueError(f"text before the first MSH segment: {line[:40]!r}")
        messages[-1].append(line)
    return [_CR.join(segments) + _CR for segments in messages]


def pix_query_message(patient: str, domains: list[str], control_id: str) -> bytes:
    """QBP^Q23 (ITI-9, HL7 v2.5) asking for the ids of ``patient`` (a CX) in ``domains`` (OIDs;
    every domain when empty)."""
    now = now_dtm()
    what = "~".join(f"^^^&{oid}&ISO" for oid in domains)
    segments = [
        f"MSH|^~\\&|XDS_CLI|XDS|XDS_PIX|XDS|{now}||QBP^Q23^QBP_Q21|{control_id}|P|2.5",
        f"QPD|IHE PIX Query|{control_id}|{patient}|{what}",
        "RCP|I",
    ]
    return ("\r".join(segments) + "\r").encode()


def _exchange(client: MLLPClient, message: bytes) -> bytes:
    """Send one framed message and read its whole answer frame (MLLPClient reads only once)."""
    data: bytes = client.send(_VT + message + _FS + _CR)
    while _FS + _CR not in data:
        more: bytes = client.socket.recv(65536)
        if not more:
            raise ConnectionError("the connection closed before the answer was complete")
        data += more
    return data[data.find(_VT) + 1:data.find(_FS + _CR)]


def _segments(message: bytes) -> list[list[str]]:
    """Each segment's fields (HL7 numbering: MSH-1 is the separator itself)."""
    text = message.decode("utf-8", errors="replace")
    sep = text[3] if text.startswith("MSH") and len(text) > 3 else "|"
    out = []
    for seg in filter(None, _TEXT_LINE_END.split(text)):
        fields = seg.split(sep)
        if fields[0] == "MSH":
            fields.insert(1, sep)
        out.append(fields)
    return out


def _field(segments: list[list[str]], name: str, number: int) -> str:
    for fields in segments:
        if fields[0] == name:
            return fields[number] if len(fields) > number else ""
    return ""


def _errors(answer: list[list[str]]) -> str:
    """The ERR segments of an answer, for an audit's outcome description."""
    return "; ".join("|".join(fields) for fields in answer if fields[0] == "ERR")


def _connect(host: str, port: int, timeout: float, tls: ssl.SSLContext | None,
             failed: Callable[[str], None]) -> MLLPClient:
    """An MLLP connection; ``failed`` is told why there is none before exiting 1."""
    try:
        client = MLLPClient(host, port)
        client.socket.settimeout(timeout)
        if tls is not None:
            client.socket = tls.wrap_socket(client.socket, server_hostname=host)
    except OSError as exc:  # refused, or the TLS handshake failed (ssl.SSLError)
        failed(failure_text(exc))
        typer.echo(f"error: cannot connect to {host}:{port}: {exc}", err=True)
        raise typer.Exit(1) from None
    return client


def _tls(tls: bool, cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext | None:
    """The client context when ``--tls`` (or any of --cert, --ca) asks for MLLP over TLS."""
    if not (tls or cert or ca):
        return None
    return credentials_from(cert, key, ca).tls_context()


@app.command("feed")
def feed(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="HL7 v2 messages (e.g. ADT^A04, ADT^A40).")],
    host: Host = "127.0.0.1",
    port: Port = 2575,
    timeout: Timeout = 30.0,
    tls: UseTls = False,
    cert: ClientCert = None,
    key: ClientKey = None,
    ca: ClientCa = None,
    audit_url: AuditUrl = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Send each message of FILE over one MLLP connection and print its ACK (MSA-1, MSA-2, any
    ERR); exit 1 when an ACK is not AA. With --audit-url each feed is audited (ITI-8 Patient
    Record); see there for when the messages are sent."""
    try:
        messages = split_messages(file.read_bytes())
    except ValueError as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    if not messages:
        typer.echo(f"error: {file} holds no HL7 message", err=True)
        raise typer.Exit(2)
    refused = 0
    url = f"mllp://{host}:{port}"
    with client_trail(data_dir, database_url, audit_url, credentials_from(cert, key, ca)) as trail:
        def audit(message: bytes, code: str = "", failure: str = "", why: str = "") -> None:
            trail.record(lambda: feed_events(trail.settings, url, message, code,
                                             failure=failure, description=why))

        def unsent(why: str) -> None:
            for message in messages:
                audit(message, failure=why)

        with _connect(host, port, timeout, _tls(tls, cert, key, ca), unsent) as client:
            for message in messages:
                sent = _segments(message)
                label = f"{_field(sent, 'MSH', 10)} {_field(sent, 'MSH', 9)}"
                try:
                    ack = _segments(_exchange(client, message))
                except OSError as exc:  # reset, timed out
                    audit(message, failure=failure_text(exc))
                    typer.echo(f"{label}: error: {exc}", err=True)
                    raise typer.Exit(1) from None
                code = _field(ack, "MSA", 1)
                audit(message, code, why=_errors(ack))
                typer.echo(f"{label}: {code or '(no MSA)'} {_field(ack, 'MSA', 2)}".rstrip())
                for fields in ack:
                    if fields[0] == "ERR":
                        typer.echo("  " + "|".join(fields))
                refused += code != AckCode.AA
    if refused:
        typer.echo(f"{refused} of {len(messages)} messages not accepted", err=True)
        raise typer.Exit(1)


@app.command("query")
def query(
    patient_id: Annotated[str, typer.Argument(
        metavar="ID",
        help="CX with assigning authority, e.g. 'IHERED-994^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'")],
    domain: Annotated[list[str] | None, typer.Option(
        "--domain", help="Assigning authority OID to return ids of (repeatable; default all).",
    )] = None,
    host: Host = "127.0.0.1",
    port: Port = 2575,
    timeout: Timeout = 30.0,
    tls: UseTls = False,
    cert: ClientCert = None,
    key: ClientKey = None,
    ca: ClientCa = None,
    audit_url: AuditUrl = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Ask the PIX Manager for the other ids of ID (ITI-9 QBP^Q23) and print them, one a line.

    With --audit-url the query is audited; see there for when the message is sent."""
    parts = patient_id.split("^")
    if len(parts) < 4 or not parts[0] or not parts[3]:
        typer.echo(f"error: {patient_id!r} is not a CX of the form ID^^^&OID&ISO", err=True)
        raise typer.Exit(2)
    domains = domain or []
    if bad := [d for d in domains if not is_oid(d)]:
        typer.echo(f"error: --domain {bad[0]!r} is not an OID", err=True)
        raise typer.Exit(2)
    message = pix_query_message(patient_id, domains, uuid.uuid4().hex[:20].upper())
    url = f"mllp://{host}:{port}"
    with client_trail(data_dir, database_url, audit_url, credentials_from(cert, key, ca)) as trail:
        def audit(code: str = "", failure: str = "", why: str = "") -> None:
            trail.record(lambda: pix_query_events(trail.settings, url, message, code,
                                                  failure=failure, description=why))

        with _connect(host, port, timeout, _tls(tls, cert, key, ca),
                      lambda why: audit(failure=why)) as client:
            try:
                answer = _segments(_exchange(client, message))
            except OSError as exc:  # refused, reset, timed out
                audit(failure=failure_text(exc))
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
        audit(_field(answer, "MSA", 1), why=_errors(answer))
    code = _field(answer, "MSA", 1)
    if code != AckCode.AA:
        typer.echo(f"error: {code or '(no MSA)'} {_field(answer, 'QAK', 2)}".rstrip(), err=True)
        for fields in answer:
            if fields[0] == "ERR":
                typer.echo("  " + "|".join(fields), err=True)
        raise typer.Exit(1)
    ids = [i for i in _field(answer, "PID", 3).split("~") if i]
    if not ids:
        typer.echo(f"no ids in the requested domains ({_field(answer, 'QAK', 2) or 'NF'})",
                   err=True)
    for cx in ids:
        typer.echo(cx)
