"""ITI-20 transport: audit messages as RFC 5424 syslog over TLS (RFC 5425), TCP (RFC 6587) or
UDP (RFC 5426).

A message is ``<85>1 TIMESTAMP HOSTNAME APP-NAME PROCID IHE+RFC-3881 - BOM<?xml ...?>...``
(facility 10 authpriv, severity 5 notice; no structured data). TLS and TCP frame each message
as ``LEN SP MSG`` (octet counting); UDP sends one datagram per message. Syslog has no
acknowledgement: a message counts as delivered once the kernel accepted the bytes, so the
stream transports check before each write that the ARR has not closed the connection
(reconnecting if it did) and give up on a stalled ARR after ``timeout`` seconds.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from typing import Protocol
from urllib.parse import urlsplit

from xds.audit.message import event_datetime
from xds.config import Settings
from xds.security.tls import client_context

__all__ = [
    "PRI", "MSGID", "syslog_message", "octet_frame", "Transport", "StreamTransport",
    "UdpTransport", "transport_for", "DEFAULT_PORTS", "MAX_DATAGRAM",
]

#: facility 10 (security/authorization, authpriv) * 8 + severity 5 (notice).
PRI = 85
MSGID = "IHE+RFC-3881"
_BOM = "\ufeff".encode()
#: Default ports by scheme: 6514 for TLS (RFC 5425), 514 for TCP and UDP.
DEFAULT_PORTS = {"syslog+tls": 6514, "syslog+tcp": 514, "syslog+udp": 514}
#: The largest UDP payload over IPv4 less some headroom; longer messages are truncated
#: (RFC 5426 allows it; an ARR then sees a broken XML document, which UDP accepts as a risk).
MAX_DATAGRAM = 65_000
#: How long a new TLS 1.3 connection waits for the server's verdict on the client certificate.
_VERDICT_WAIT = 1.0


def _printable(value: str, limit: int) -> str:
    """A header field: PRINTUSASCII (33..126) only, at most ``limit`` characters, ``-`` if empty."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return cleaned or "-"


def syslog_message(xml: str, *, app_name: str, timestamp: float, hostname: str | None = None,
                   procid: str | None = None) -> bytes:
    """The RFC 5424 message carrying the AuditMessage ``xml``, as UTF-8 bytes."""
    header = " ".join((
        f"<{PRI}>1", event_datetime(timestamp),
        _printable(hostname if hostname is not None else socket.gethostname(), 255),
        _printable(app_name, 48), _printable(procid if procid is not None else str(os.getpid()), 128),
        MSGID, "-"))
    return header.encode("ascii") + b" " + _BOM + xml.encode("utf-8")


def octet_frame(message: bytes) -> bytes:
    """RFC 5425 / RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


class Transport(Protocol):
    """Where audit messages go; ``send`` raises ``OSError`` when the message was not taken."""

    def send(self, message: bytes) -> None: ...

    def close(self) -> None: ...


class StreamTransport:
    """Syslog over TCP, or TLS with ``context``: one connection, opened when first needed and
    again after any failure."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None = None,
                 timeout: float = 10.0) -> None:
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self.context is None:
                return raw
            tls = self.context.wrap_socket(raw, server_hostname=self.host)
            tls.settimeout(self.timeout)
            if tls.version() == "TLSv1.3":
                self._await_verdict(tls)
            return tls
        except BaseException:
            raw.close()
            raise

    def _await_verdict(self, tls: ssl.SSLSocket) -> None:
        """In TLS 1.3 the client's handshake ends before the server has checked the client
        certificate: wait a moment for its session tickets (accepted) or an alert (refused),
        so a refusal fails the connection rather than the first message written into it."""
        readable, _, _ = select.select([tls], [], [], min(self.timeout, _VERDICT_WAIT))
        if not readable:
            return  # a server that sends no tickets: the first write will tell
        tls.setblocking(False)
        try:
            if tls.recv(1) == b"":
                raise ConnectionResetError("the audit repository closed the TLS connection")
        except ssl.SSLWantReadError:
            pass  # tickets only
        finally:
            tls.settimeout(self.timeout)

    def _alive(self, sock: socket.socket) -> bool:
        """False when the ARR closed or reset the connection. It never sends on a syslog
        connection, so readable means end of stream (or a TLS 1.3 session ticket)."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return True
            sock.setblocking(False)
            try:
                return sock.recv(1) != b""
            finally:
                sock.settimeout(self.timeout)
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except (OSError, ValueError):
            return False

    def send(self, message: bytes) -> None:
        if self._sock is not None and not self._alive(self._sock):
            self.close()
        if self._sock is None:
            self._sock = self._connect()
        try:
            self._sock.sendall(octet_frame(message))
        except BaseException:
            # A frame may be half written: the next one must start on a fresh connection.
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


class UdpTransport:
    """Syslog over UDP: one datagram per message (RFC 5426).

    UDP has no acknowledgement, but the socket is connected, so an ICMP port unreachable from
    the ARR's host (nothing listening there) comes back as ECONNREFUSED. It is checked right
    after each write (on loopback and fast links it is already there) and before the next:
    the message is then reported as not taken, and the sender keeps it for a retry. A refusal
    that comes later than the next write, or no ICMP at all (filtered, rate-limited, a host
    down), still loses the datagram: UDP stays best effort.
    """

    def __init__(self, host: str, port: int, max_datagram: int = MAX_DATAGRAM) -> None:
        self.address = (host, port)
        self.max_datagram = max_datagram
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                sock.connect(self.address)  # no packet sent: it fixes the peer (and resolves it)
            except BaseException:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    @staticmethod
    def _refused(sock: socket.socket) -> None:
        """Raise the error an ICMP message left on ``sock`` (reading it clears it)."""
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, os.strerror(error))

    def send(self, message: bytes) -> None:
        sock = self._socket()
        # An earlier datagram was refused: the ARR is down, this one would be lost too.
        self._refused(sock)
        sock.send(message[:self.max_datagram])
        self._refused(sock)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def transport_for(settings: Settings, timeout: float = 10.0) -> Transport:
    """The transport ``settings.audit_url`` names; TLS presents ``client_cert``/``client_key``
    and verifies the ARR with ``client_ca`` (else ``tls_ca``)."""
    url = urlsplit(settings.audit_url)
    scheme = url.scheme.lower()
    if scheme not in DEFAULT_PORTS or not url.hostname:
        raise ValueError(f"audit URL {settings.audit_url!r}: use syslog+tls://host:port, "
                         "syslog+tcp://host:port or syslog+udp://host:port")
    port = url.port or DEFAULT_PORTS[scheme]
    if scheme == "syslog+udp":
        return UdpTransport(url.hostname, port)
    context = None
    if scheme == "syslog+tls":
        context = client_context(settings.client_ca or settings.tls_ca, settings.client_cert,
                                 settings.client_key, legacy=settings.tls_legacy == "yes")
    return StreamTransport(url.hostname, port, context, timeout)
