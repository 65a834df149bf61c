"""ITI-10 PIX Update Notification: the ADT^A31 built, delivered after a feed and a merge, retried."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import hl7
import pytest
from sqlalchemy import Engine, func, select

from tests.mpi import support
from tests.mpi.conftest import Consumer, PixManager
from tests.mpi.support import AFFINITY, BLUE, GREEN, adt, cx, exchange, field
from tests.server import free_port
from xds.mpi.iti10 import build_iti10
from xds.mpi.model import PatientIdentifier, Person
from xds.store.tables import mpi_notification


#: The newest notification id before the running test: rows of earlier tests stay in the
#: session's database, and a consumer's port (its subscriber URL) may be reused by a later one.
_before = [0]


@pytest.fixture(autouse=True)
def _only_this_tests_rows(engine: Engine) -> None:
    with engine.connect() as conn:
        _before[0] = conn.execute(select(func.coalesce(func.max(mpi_notification.c.id), 0)))\
            .scalar_one()


def _rows(engine: Engine, subscriber: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(mpi_notification).where(
            mpi_notification.c.subscriber == subscriber, mpi_notification.c.id > _before[0])
            .order_by(mpi_notification.c.id)))


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _pid3(message: Any) -> list[str]:
    return sorted(str(message.segment("PID")[3]).split("~"))


def test_build_iti10_lists_every_linked_id() -> None:
    person = Person(person_id="urn:uuid:x", identifiers=[
        PatientIdentifier(AFFINITY, "XDS1"), PatientIdentifier(GREEN, "G^1")])
    message = hl7.parse(build_iti10(person))
    assert [str(s[0]) for s in message] == ["MSH", "EVN", "PID", "PV1"]
    assert field(message, "MSH", 9) == "ADT^A31^ADT_A05"
    assert field(message, "MSH", 12) == "2.5"
    assert field(message, "PID", 3) == f"XDS1^^^&{AFFINITY}&ISO~G\\S\\1^^^&{GREEN}&ISO"
    assert message.segment("PID").extract_field(1, 3, 2, 1) == "G^1"
    assert field(message, "PID", 5) == "~^^^^^^S"
    assert str(message.segment("PV1")) == "PV1||N"


def test_feed_is_notified(start_pix: Callable[..., PixManager], consumer: Consumer) -> None:
    consumer.start()
    pix = start_pix(pix_subscribers=consumer.url())
    green, blue = support.new_value(), support.new_value()
    ack = exchange(pix.address, adt("A01", f"{cx(green, GREEN)}~{cx(blue, BLUE)}"))
    assert field(ack, "MSA", 1) == "AA"
    message = consumer.next()
    assert field(message, "MSH", 9) == "ADT^A31^ADT_A05"
    person = pix.index.person(PatientIdentifier(GREEN, green))
    assert person is not None
    assert _pid3(message) == sorted(cx(i.value, i.domain) for i in person.identifiers)
    assert cx(green, GREEN) in _pid3(message) and cx(blue, BLUE) in _pid3(message)


def test_merge_is_notified_without_the_subsumed_id(start_pix: Callable[..., PixManager],
                                                   consumer: Consumer, engine: Engine) -> None:
    consumer.start()
    pix = start_pix(pix_subscribers=consumer.url())
    a, b = support.new_value(), support.new_value()
    exchange(pix.address, adt("A01", cx(a, GREEN)))
    exchange(pix.address, adt("A01", cx(b, GREEN)))
    _wait_for(lambda: all(r.delivered for r in _rows(engine, consumer.url())))
    while not consumer.received.empty():
        consumer.received.get()
    assert field(exchange(pix.address, adt("A40", cx(a, GREEN), mrg1=cx(b, GREEN))), "MSA", 1) == "AA"
    ids = _pid3(consumer.next())
    assert cx(a, GREEN) in ids
    assert cx(b, GREEN) not in ids
    assert len([i for i in ids if AFFINITY in i]) == 1


def test_delivery_is_retried_until_the_consumer_listens(start_pix: Callable[..., PixManager],
                                                        consumer: Consumer, engine: Engine) -> None:
    port = free_port()
    url = f"mllp://127.0.0.1:{port}"
    pix = start_pix(pix_subscribers=url)
    green = support.new_value()
    started = time.monotonic()
    ack = exchange(pix.address, adt("A04", cx(green, GREEN)))
    assert field(ack, "MSA", 1) == "AA"  # the feed does not wait for the consumer
    assert time.monotonic() - started < 5
    _wait_for(lambda: any(r.attempts >= 1 and r.last_error for r in _rows(engine, url)))
    (row,) = _rows(engine, url)
    assert row.delivered is None
    consumer.start(port)
    assert cx(green, GREEN) in _pid3(consumer.next())
    _wait_for(lambda: _rows(engine, url)[0].delivered is not None)


def test_an_ae_ack_is_retried(start_pix: Callable[..., PixManager], consumer: Consumer,
                              engine: Engine) -> None:
    consumer.answers = ["AE"]
    consumer.start()
    pix = start_pix(pix_subscribers=consumer.url())
    green = support.new_value()
    exchange(pix.address, adt("A01", cx(green, GREEN)))
    first, second = consumer.next(), consumer.next()
    assert _pid3(first) == _pid3(second)
    _wait_for(lambda: _rows(engine, consumer.url())[0].delivered is not None)
    (row,) = _rows(engine, consumer.url())
    assert row.attempts == 2


def test_unsupported_subscriber_stays_queued(start_pix: Callable[..., PixManager],
                                             engine: Engine) -> None:
    # ITI-46 (http) may be missing from this installation or find nobody at port 1: either
    # way the row is kept for a later attempt, with the reason.
    url = "http://127.0.0.1:1/pix"
    pix = start_pix(pix_subscribers=f"{url},ftp://127.0.0.1/x")
    exchange(pix.address, adt("A01", cx(support.new_value(), GREEN)))
    _wait_for(lambda: all(r.last_error for r in _rows(engine, url) + _rows(engine, "ftp://127.0.0.1/x")))
    rows = _rows(engine, url) + _rows(engine, "ftp://127.0.0.1/x")
    assert all(r.delivered is None and r.attempts >= 1 for r in rows)
    assert "UnsupportedScheme" in rows[-1].last_error
