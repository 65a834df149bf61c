"""The syslog message (RFC 5424) and the three transports, against a real receiver."""

from __future__ import annotations

import dataclasses
import re
import socket

import pytest

from tests.audit.conftest import TlsFiles
from tests.audit.receiver import SyslogReceiver, parse_syslog
from xds.audit.syslog import (
    StreamTransport, UdpTransport, octet_frame, syslog_message, transport_for,
)
from xds.config import Settings

XML = '<?xml version="1.0" encoding="UTF-8"?><AuditMessage><EventIdentification/></AuditMessage>'
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_header_fields_exactly() -> None:
    raw = syslog_message(XML, app_name="xds registry", timestamp=1_764_766_068.25,
                         hostname="node1.example.org", procid="4242")
    assert raw == ("<85>1 2025-12-03T12:47:48.250Z node1.example.org xds_registry 4242 "
                   "IHE+RFC-3881 - \ufeff" + XML).encode("utf-8")
    message = parse_syslog(raw)
    assert (message.pri, message.version, message.msgid, message.structured_data) == \
        ("85", "1", "IHE+RFC-3881", "-")
    assert message.msg.startswith(b"\xef\xbb\xbf<?xml")


def test_header_defaults_and_limits() -> None:
    message = parse_syslog(syslog_message(XML, app_name="x" * 60, timestamp=0))
    assert RFC3339.match(message.timestamp)
    assert message.hostname == socket.gethostname()
    assert message.procid.isdigit()
    assert message.app_name == "x" * 48
    assert parse_syslog(syslog_message(XML, app_name="", timestamp=0)).app_name == "-"


def test_octet_counting_counts_bytes() -> None:
    message = syslog_message("<é/>", app_name="a", timestamp=0)
    framed = octet_frame(message)
    length, rest = framed.split(b" ", 1)
    assert int(length) == len(rest) == len(message) and rest == message


def _deliver(transport: StreamTransport | UdpTransport, arr: SyslogReceiver, count: int = 3) -> None:
    try:
        for n in range(count):
            transport.send(syslog_message(XML.replace("<EventIdentification/>", f"<n>{n}</n>"),
                                          app_name="xds", timestamp=n))
        received = arr.wait_for(count)
    finally:
        transport.close()
    assert [m.xml.findtext("n") for m in received] == [str(n) for n in range(count)]
    assert all(m.app_name == "xds" and m.msgid == "IHE+RFC-3881" for m in received)


def test_tcp_delivers() -> None:
    with SyslogReceiver("tcp") as arr:
        _deliver(transport_for(Settings(audit_url=arr.url)), arr)  # type: ignore[arg-type]
        assert arr.connections == 1


def test_tls_delivers_with_client_certificate(tls_files: TlsFiles) -> None:
    with SyslogReceiver("tls", tls_files.server_context()) as arr:
        settings = tls_files.client_settings(Settings(), arr.url)
        _deliver(transport_for(settings), arr)  # type: ignore[arg-type]


def test_tls_without_client_certificate_is_refused(tls_files: TlsFiles) -> None:
    with SyslogReceiver("tls", tls_files.server_context()) as arr:
        settings = dataclasses.replace(tls_files.client_settings(Settings(), arr.url),
                                       client_cert="", client_key="")
        transport = transport_for(settings, timeout=2)
        # TLS 1.3 ends the client's handshake before the server checked the certificate:
        # the refusal must still fail this first send (or the message would count as sent).
        with pytest.raises(OSError):
            transport.send(syslog_message(XML, app_name="xds", timestamp=0))
        transport.close()
        assert arr.messages == []


def test_udp_delivers_and_truncates() -> None:
    with SyslogReceiver("udp") as arr:
        _deliver(transport_for(Settings(audit_url=arr.url)), arr)  # type: ignore[arg-type]
        small = UdpTransport("127.0.0.1", arr.port, max_datagram=100)
        small.send(syslog_message(XML + " " * 500, app_name="xds", timestamp=0))
        small.close()
        assert len(arr.wait_for(4)[3].msg) < 100


def test_tcp_reconnects_after_the_arr_restarts() -> None:
    with SyslogReceiver("tcp") as arr:
        transport = transport_for(Settings(audit_url=arr.url))
        transport.send(syslog_message(XML, app_name="before", timestamp=0))
        arr.wait_for(1)
        arr.restart()
        # The old connection is closed; the transport notices before writing into it.
        transport.send(syslog_message(XML, app_name="after", timestamp=0))
        assert [m.app_name for m in arr.wait_for(2)] == ["before", "after"]
        assert arr.connections == 2
        transport.close()


@pytest.mark.parametrize("url", ["http://x", "syslog+tcp://", "syslog://host:514"])
def test_bad_audit_url(url: str) -> None:
    with pytest.raises(ValueError):
        transport_for(Settings(audit_url=url))
