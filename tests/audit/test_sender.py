"""The outbox and its sender against a real syslog receiver: order, outages, stalls, sharing."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.audit.conftest import Outbox, TlsFiles
from tests.audit.receiver import Received, SyslogReceiver
from xds.audit.events import Action, AuditEvent, CodedValue, EventId, Outcome, ParticipantObject
from xds.audit.sender import AuditSender
from xds.audit.trail import record, record_now
from xds.config import Settings
from xds.store.db import open_engine, read_connection, write_transaction
from xds.store.tables import audit_outbox

ITI18 = CodedValue("ITI-18", "IHE Transactions", "Registry Stored Query")
#: Generous: far above what a recording takes, far below the stalled sender's socket timeout.
QUICK = 10.0
#: Request bytes of an event too big for the kernel's socket buffers (4 MB here at most).
BIG = 3_000_000


def query(mark: str, size: int = 100) -> AuditEvent:
    """A Query event told apart by ``mark``; ``size`` bytes of request make it big."""
    return AuditEvent(EventId.QUERY, Action.EXECUTE, Outcome.SUCCESS, ITI18, objects=(
        ParticipantObject(mark, 2, 24, ITI18, query=b"q" * size),))


def marks(messages: list[Received]) -> list[str]:
    return [str(m.xml.xpath("string(ParticipantObjectIdentification/@ParticipantObjectID)"))
            for m in messages]


def unsent(outbox: Outbox) -> int:
    with read_connection(outbox.engine) as conn:
        return len(conn.execute(select(audit_outbox.c.id).where(audit_outbox.c.sent.is_(None)))
                   .all())


def wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@contextmanager
def sending(outbox: Outbox, url: str, settings: Settings | None = None, *, batch: int = 100,
            poll: float = 0.2, timeout: float = 5.0) -> Iterator[AuditSender]:
    sender = AuditSender(outbox.engine, dataclasses.replace(settings or outbox.settings,
                                                            audit_url=url),
                         batch=batch, poll=poll, timeout=timeout, min_backoff=0.05,
                         max_backoff=0.4)
    sender.start()
    try:
        yield sender
    finally:
        sender.stop()


def test_sends_in_id_order_and_stamps_rows(outbox: Outbox) -> None:
    for n in range(5):
        record_now(outbox.engine, query(f"m{n}"), outbox.settings)
    with SyslogReceiver("tcp") as arr, sending(outbox, arr.url):
        assert marks(arr.wait_for(5)) == [f"m{n}" for n in range(5)]
        wait_until(lambda: unsent(outbox) == 0)
    with read_connection(outbox.engine) as conn:
        rows = conn.execute(select(audit_outbox)).all()
    assert all(r.sent >= r.created and r.attempts == 1 for r in rows)
    assert all(m.app_name == outbox.settings.audit_source_id for m in arr.messages)


def test_tls_sender(outbox: Outbox, tls_files: TlsFiles) -> None:
    with SyslogReceiver("tls", tls_files.server_context()) as arr:
        settings = tls_files.client_settings(outbox.settings, arr.url)
        with sending(outbox, arr.url, settings):
            for n in range(3):
                record_now(outbox.engine, query(f"t{n}"), outbox.settings)
            assert marks(arr.wait_for(3)) == ["t0", "t1", "t2"]


def test_record_wakes_the_sender(outbox: Outbox) -> None:
    with SyslogReceiver("tcp") as arr, sending(outbox, arr.url, poll=60.0):
        time.sleep(0.2)  # the sender's first pass found nothing; it now sleeps 60 s
        with write_transaction(outbox.engine) as conn:
            record(conn, query("woken"), outbox.settings)
        assert marks(arr.wait_for(1, timeout=QUICK)) == ["woken"]


def test_rolled_back_record_leaves_no_row(outbox: Outbox) -> None:
    with pytest.raises(RuntimeError), write_transaction(outbox.engine) as conn:
        record(conn, query("rolled back"), outbox.settings)
        raise RuntimeError("the change failed")
    with write_transaction(outbox.engine) as conn:
        record(conn, query("committed"), outbox.settings)
    with read_connection(outbox.engine) as conn:
        assert [r.message.count("committed") for r in conn.execute(select(audit_outbox))] == [1]


def test_record_now_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path)
    engine = open_engine(settings)  # not migrated: there is no audit_outbox table
    try:
        record_now(engine, query("lost"), settings)
    finally:
        engine.dispose()
    assert "not recorded" in caplog.text


def test_long_event_type_is_cut_to_its_column(outbox: Outbox) -> None:
    record_now(outbox.engine, dataclasses.replace(query("m"), event_type=CodedValue(
        "X" * 40, "IHE Transactions")), outbox.settings)
    with read_connection(outbox.engine) as conn:
        assert conn.execute(select(audit_outbox.c.event_type)).scalar_one() == "X" * 32


def test_arr_down_and_back_loses_nothing(outbox: Outbox) -> None:
    with SyslogReceiver("tcp") as arr, sending(outbox, arr.url) as sender:
        for n in range(3):
            record_now(outbox.engine, query(f"a{n}"), outbox.settings)
        arr.wait_for(3)
        wait_until(lambda: unsent(outbox) == 0)
        arr.stop()
        started = time.monotonic()
        for n in range(10):
            if n % 2:
                record_now(outbox.engine, query(f"b{n}"), outbox.settings)
            else:
                with write_transaction(outbox.engine) as conn:
                    record(conn, query(f"b{n}"), outbox.settings)
        assert time.monotonic() - started < QUICK
        wait_until(lambda: sender.failures >= 2)  # it tried, and is backing off
        assert unsent(outbox) == 10
        arr.start()  # the same port
        received = marks(arr.wait_for(13))
        wait_until(lambda: unsent(outbox) == 0)
    assert sorted(received) == sorted([f"a{n}" for n in range(3)] + [f"b{n}" for n in range(10)])
    with read_connection(outbox.engine) as conn:
        assert max(r.attempts for r in conn.execute(select(audit_outbox))) >= 2


def test_stalled_arr_never_blocks_recording(outbox: Outbox) -> None:
    with SyslogReceiver("tcp", rcvbuf=4096) as arr:
        arr.stall()
        with sending(outbox, arr.url, timeout=120.0):
            for n in range(3):  # far more than the socket buffers hold
                record_now(outbox.engine, query(f"big{n}", BIG), outbox.settings)
            wait_until(lambda: arr.connections == 1)
            time.sleep(0.5)
            assert unsent(outbox) == 3  # the sender is stuck writing the first one
            started = time.monotonic()
            record_now(outbox.engine, query("during"), outbox.settings)
            with write_transaction(outbox.engine) as conn:
                record(conn, query("during-tx"), outbox.settings)
            assert time.monotonic() - started < QUICK
            assert arr.messages == [] and unsent(outbox) == 5  # still stalled meanwhile
            arr.resume()
            received = marks(arr.wait_for(5))
            wait_until(lambda: unsent(outbox) == 0)
    assert received == ["big0", "big1", "big2", "during", "during-tx"]
    assert arr.connections == 1


def test_stall_past_the_timeout_reconnects_and_loses_nothing(outbox: Outbox) -> None:
    with SyslogReceiver("tcp", rcvbuf=4096) as arr:
        arr.stall()
        with sending(outbox, arr.url, timeout=0.5):
            for n in range(3):
                record_now(outbox.engine, query(f"big{n}", BIG), outbox.settings)
            wait_until(lambda: arr.connections >= 3)  # timed out and reconnected, twice
            record_now(outbox.engine, query("late"), outbox.settings)
            arr.resume()
            wait_until(lambda: unsent(outbox) == 0, timeout=30)
            received = marks(arr.wait_for(4))
    # A frame cut short by the timeout is dropped by the ARR and sent again whole.
    assert set(received) == {"big0", "big1", "big2", "late"}
    assert arr.frames_cut >= 1


def test_two_senders_share_one_outbox(outbox: Outbox) -> None:
    for n in range(60):
        record_now(outbox.engine, query(f"s{n}"), outbox.settings)
    with SyslogReceiver("tcp") as arr, sending(outbox, arr.url, batch=5), \
            sending(outbox, arr.url, batch=5):
        received = marks(arr.wait_for(60))
        wait_until(lambda: unsent(outbox) == 0)
        time.sleep(0.3)
    assert sorted(received) == sorted(f"s{n}" for n in range(60))  # each exactly once
    assert len(arr.messages) == 60


def test_an_unwritable_event_never_fails_the_transaction(outbox: Outbox) -> None:
    broken = dataclasses.replace(query("broken"), objects=(ParticipantObject(
        None, 2, 24, ITI18),))  # type: ignore[arg-type]  # what a caller's bug might pass
    with write_transaction(outbox.engine) as conn:
        record(conn, broken, outbox.settings)
        record(conn, query("fine"), outbox.settings)
    with read_connection(outbox.engine) as conn:
        assert [r.message.count("fine") for r in conn.execute(select(audit_outbox))] == [1]
