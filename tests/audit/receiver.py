"""A real syslog receiver for tests: an Audit Record Repository over TLS, TCP or UDP.

It parses each RFC 5424 message (octet-counted frames on TLS/TCP, one per datagram on UDP)
into its header fields and the AuditMessage XML, can be stopped and restarted on the same
port, and can stall: accept connections and then read nothing (``stall``/``resume``).

    with SyslogReceiver("tcp") as arr:
        ...  # send to arr.url
        [message] = arr.wait_for(1)
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from types import TracebackType

from lxml import etree

__all__ = ["Received", "SyslogReceiver", "parse_syslog"]

_POLL = 0.05


@dataclass(frozen=True, slots=True)
class Received:
    """One syslog message as received."""

    pri: str
    version: str
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str
    #: The MSG part, BOM included.
    msg: bytes

    @property
    def xml(self) -> etree._Element:
        """The AuditMessage (the MSG after its BOM)."""
        return etree.fromstring(self.msg.removeprefix(b"\xef\xbb\xbf"))


def parse_syslog(raw: bytes) -> Received:
    """An RFC 5424 message: ``<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG``."""
    head, timestamp, hostname, app_name, procid, msgid, sd, msg = raw.split(b" ", 7)
    pri, version = head[1:].split(b">", 1)
    if not head.startswith(b"<"):
        raise ValueError(f"no PRI in {raw[:40]!r}")
    return Received(pri.decode(), version.decode(), timestamp.decode(), hostname.decode(),
                    app_name.decode(), procid.decode(), msgid.decode(), sd.decode(), msg)


class _Frames:
    """RFC 6587 octet counting: ``LEN SP MSG`` frames out of a byte stream."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames: list[bytes] = []
        while True:
            space = self.buffer.find(b" ")
            if space < 0:
                return frames
            length = int(self.buffer[:space])
            if len(self.buffer) < space + 1 + length:
                return frames
            frames.append(self.buffer[space + 1:space + 1 + length])
            self.buffer = self.buffer[space + 1 + length:]


class SyslogReceiver:
    """An ARR on 127.0.0.1: ``kind`` "tls" (with ``context``), "tcp" or "udp".

    ``messages`` holds what was received, in order; ``frames_cut`` counts partial frames a
    closing sender left behind; ``connections`` counts accepted connections.
    """

    def __init__(self, kind: str, context: ssl.SSLContext | None = None, port: int = 0,
                 rcvbuf: int | None = None) -> None:
        if kind not in ("tls", "tcp", "udp") or (kind == "tls") != (context is not None):
            raise ValueError("kind tls needs a context, tcp and udp none")
        self.kind, self.context, self.port, self.rcvbuf = kind, context, port, rcvbuf
        self.messages: list[Received] = []
        self.frames_cut = 0
        self.connections = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._reading = threading.Event()
        self._reading.set()
        self._threads: list[threading.Thread] = []
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"syslog+{self.kind}://127.0.0.1:{self.port}"

    def __enter__(self) -> SyslogReceiver:
        self.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Listen (again) on ``port`` (a free one the first time when 0)."""
        self._stop.clear()
        udp = self.kind == "udp"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        sock.settimeout(_POLL)
        if not udp:
            sock.listen(16)
        self._sock = sock
        self._spawn(self._datagrams if udp else self._accept, sock)

    def stop(self) -> None:
        """Close the port and every connection (what was already read is kept)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def stall(self) -> None:
        """Keep accepting connections but read nothing from them."""
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The messages once there are at least ``count`` (AssertionError after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"{len(self.messages)} of {count} audit messages arrived")
            return list(self.messages)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _add(self, raw: bytes) -> None:
        with self._cond:
            self.messages.append(parse_syslog(raw))
            self._cond.notify_all()

    def _datagrams(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = sock.recv(70_000)
            except TimeoutError:
                continue
            self._add(data)

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._spawn(self._read, conn)

    def _read(self, conn: socket.socket) -> None:
        frames = _Frames()
        stream: socket.socket = conn
        try:
            while not self._stop.is_set():
                if not self._reading.wait(_POLL):
                    continue
                if self.context is not None and stream is conn:
                    conn.settimeout(5)
                    stream = self.context.wrap_socket(conn, server_side=True)
                data = self._recv(stream, _POLL)
                if data is None:
                    continue
                if not data:
                    return
                for frame in frames.feed(data):
                    self._add(frame)
            # Stopping: what the kernel already holds was delivered, keep it (unless stalled).
            while self._reading.is_set() and (data := self._recv(stream, 0.0)):
                for frame in frames.feed(data):
                    self._add(frame)
        except (OSError, ssl.SSLError):
            pass  # a refused handshake, a reset
        finally:
            if frames.buffer:
                self.frames_cut += 1
            stream.close()

    @staticmethod
    def _recv(stream: socket.socket, timeout: float) -> bytes | None:
        """Up to 64 KiB; None when nothing came within ``timeout``, b"" at end of stream."""
        stream.settimeout(timeout)
        try:
            return stream.recv(65536)
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
            return None
        except (ConnectionError, ssl.SSLError):
            return b""
