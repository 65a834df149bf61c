"""The MLLP listener under bad input: garbage, broken frames, idle and half-open peers, huge
messages, crashes. Each gets an AR/AE or is dropped, the connection stays usable where the
framing allows, and nothing is stored."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import hl7
import hl7.client
import pytest
from sqlalchemy import Engine

from tests.mpi import support
from tests.mpi.conftest import PixManager
from tests.mpi.support import GREEN, adt, cx, exchange, exchange_raw, field, frame, read_frame
from xds.mpi.mllp import MAX_FRAME_BYTES


@pytest.fixture
def conn(mllp_server: tuple[str, int]) -> Iterator[socket.socket]:
    sock = socket.create_connection(mllp_server, timeout=support.TIMEOUT)
    try:
        yield sock
    finally:
        sock.close()


def _valid(value: str | None = None, control_id: str = "OK1") -> bytes:
    return adt("A01", cx(value or support.new_value(), GREEN), control_id=control_id).encode()


def _assert_accepted(answer: object, control_id: str = "OK1") -> None:
    assert (field(answer, "MSA", 1), field(answer, "MSA", 2)) == ("AA", control_id)


@pytest.mark.parametrize("garbage", [
    b"hello world\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(2000).replace(b"\x0b", b""),
], ids=["text", "http", "binary"])
def test_garbage_before_a_frame_is_dropped_and_the_frame_answered(
        garbage: bytes, conn: socket.socket, engine: Engine) -> None:
    before = support.count_identifiers(engine)
    conn.sendall(garbage)
    _assert_accepted(exchange_raw(conn, frame(_valid())))
    assert support.count_identifiers(engine) == before + 2  # the GREEN id and its affinity id


def test_garbage_with_end_bytes_is_dropped_without_answer(conn: socket.socket) -> None:
    conn.sendall(b"not a frame\x1c\x0d")
    _assert_accepted(exchange_raw(conn, frame(_valid())))


@pytest.mark.parametrize("content", [
    b"garbage", b"", b"MSH", b"MSHxyzw", b"MSH|^~\\&", os.urandom(500).replace(b"\x0b", b"")
    .replace(b"\x1c\x0d", b""),
], ids=["text", "empty", "msh-only", "letters-as-separators", "no-fields", "binary"])
def test_a_framed_non_message_gets_ar_and_the_connection_goes_on(
        content: bytes, conn: socket.socket, engine: Engine) -> None:
    before = support.count_identifiers(engine)
    answer = exchange_raw(conn, frame(content))
    assert field(answer, "MSA", 1) == "AR"
    assert field(answer, "ERR", 3).split("^")[0] in {"100", "102"}
    assert support.count_identifiers(engine) == before
    _assert_accepted(exchange_raw(conn, frame(_valid())))


def test_a_frame_without_end_bytes_is_dropped_for_the_next_frame(conn: socket.socket,
                                                                 engine: Engine) -> None:
    lost = support.new_value()
    conn.sendall(b"\x0b" + _valid(lost, control_id="LOST"))
    _assert_accepted(exchange_raw(conn, frame(_valid(control_id="NEXT"))), "NEXT")
    assert support.identifier_rows(engine, lost) == []


def test_a_cr_after_the_end_block_is_not_a_frame(conn: socket.socket) -> None:
    # MLLP's end block is FS CR; readers stopping at FS leave a CR that corrupts the next frame.
    conn.sendall(frame(_valid(control_id="ONE")) + b"\r\n")
    _assert_accepted(hl7.parse(read_frame(conn).decode()), "ONE")
    _assert_accepted(exchange_raw(conn, frame(_valid(control_id="TWO"))), "TWO")


def test_pipelined_frames_are_answered_in_order(conn: socket.socket) -> None:
    conn.sendall(b"".join(frame(_valid(control_id=f"N{i}")) for i in range(5)))
    for i in range(5):
        _assert_accepted(hl7.parse(read_frame(conn).decode()), f"N{i}")


def test_half_open_and_idle_peers_leave_the_server_healthy(mllp_server: tuple[str, int]) -> None:
    silent = socket.create_connection(mllp_server)  # stays open, sends nothing
    half = socket.create_connection(mllp_server)
    half.sendall(b"\x0b" + _valid()[:40])  # half a frame, then gone
    half.close()
    nothing = socket.create_connection(mllp_server)
    nothing.close()
    reset = socket.create_connection(mllp_server)
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reset.sendall(b"\x0b" + _valid()[:40])
    reset.close()  # RST
    try:
        _assert_accepted(exchange(mllp_server, _valid()))
        with hl7.client.MLLPClient(*mllp_server) as client:
            for i in range(3):
                _assert_accepted(exchange(mllp_server, _valid(control_id=f"C{i}"), client=client),
                                 f"C{i}")
    finally:
        silent.close()


def test_an_idle_connection_is_closed(start_pix: Callable[..., PixManager]) -> None:
    pix = start_pix(idle_timeout=0.5)
    with socket.create_connection(pix.address, timeout=support.TIMEOUT) as sock:
        sock.sendall(b"\x0bMSH|")  # a frame that never ends
        assert sock.recv(100) == b""  # closed by the server, not by our timeout


def test_a_message_over_the_cap_is_rejected_and_the_connection_closed(
        conn: socket.socket, engine: Engine) -> None:
    value = support.new_value()
    padding = [f"NTE|{i}||{'x' * 1000}" for i in range(MAX_FRAME_BYTES // 1000 + 10)]
    huge = adt("A01", cx(value, GREEN), control_id="HUGE", extra=padding).encode()
    assert len(huge) > MAX_FRAME_BYTES
    before = support.count_identifiers(engine)
    conn.sendall(frame(huge))
    answer = hl7.parse(read_frame(conn).decode())
    assert (field(answer, "MSA", 1), field(answer, "MSA", 2)) == ("AR", "HUGE")
    assert "limit" in field(answer, "ERR", 8)
    assert conn.recv(100) == b""
    assert support.identifier_rows(engine, value) == []
    assert support.count_identifiers(engine) == before


def test_a_message_under_the_cap_is_accepted(mllp_server: tuple[str, int]) -> None:
    padding = [f"NTE|{i}||{'x' * 1000}" for i in range(MAX_FRAME_BYTES // 1000 - 20)]
    big = adt("A01", cx(support.new_value(), GREEN), control_id="BIG", extra=padding)
    _assert_accepted(exchange(mllp_server, big), "BIG")


def test_a_crash_is_answered_ae_and_logged(start_pix: Callable[..., PixManager],
                                           monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    pix = start_pix()

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pix.index, "feed", broken)
    with hl7.client.MLLPClient(*pix.address) as client:
        answer = exchange(pix.address, _valid(control_id="BOOM"), client=client)
        assert (field(answer, "MSA", 1), field(answer, "MSA", 2)) == ("AE", "BOOM")
        assert field(answer, "ERR", 3).split("^")[0] == "207"
        assert "disk on fire" not in str(answer)  # no internals on the wire
        query = exchange(pix.address, support.qbp(cx("X", GREEN)), client=client)
        assert field(query, "MSA", 1) == "AE"  # same connection, next message answered
    assert any("disk on fire" in (r.exc_text or "") for r in caplog.records)
