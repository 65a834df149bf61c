"""The audit records of the PIX Manager's HL7 v3 side at the real server (ITI-44 feed and merge,
ITI-45 query) and of the PIX Update Notifications it sends (ITI-10)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from lxml import etree
from sqlalchemy import Engine, delete

from tests import soapclient
from tests.audit.transactions_support import (
    DESTINATION, SOURCE, Record, assert_client_source, assert_patient, assert_us, details,
    last_id, one, query_of, records,
)
from tests.mpi.conftest import Consumer, LoopThread
from tests.mpi_v3.conftest import ADD, DOMAIN_A, MERGE, QUERY, feed_message, new_value, query_message
from xds.config import Settings
from xds.hl7v3 import Interaction
from xds.mpi.index import PatientIndex
from xds.mpi.model import Demographics, PatientIdentifier
from xds.mpi.notifier import run_notifier
from xds.store.tables import mpi_notification


def _send(server: str, interaction: str, message: etree._Element) -> etree._Element:
    _, body = soapclient.post(server + "/pix", Interaction[interaction].action, message)
    return body


def _cx(value: str, domain: str = DOMAIN_A) -> str:
    return f"{value}^^^&{domain}&ISO"


def test_iti44_feed_and_merge(server: str, engine: Engine) -> None:
    kept, merged = new_value(), new_value()
    since = last_id(engine)
    _send(server, ADD, feed_message(ADD, [(DOMAIN_A, kept)]))
    record = one(records(engine, since, "ITI-44"))
    record.assert_event("110110", "C", 0, "ITI-44", "Patient Identity Feed")
    assert_client_source(record)
    assert_us(record, "/pix")
    assert_patient(record, _cx(kept))

    _send(server, ADD, feed_message(ADD, [(DOMAIN_A, merged)]))
    since = last_id(engine)
    _send(server, MERGE, feed_message(MERGE, [(DOMAIN_A, kept)], subsumed=(DOMAIN_A, merged)))
    found = records(engine, since, "ITI-44")
    assert [(r.ident.get("EventActionCode"), r.row.patient, r.row.outcome) for r in found] == [
        ("D", _cx(merged), 0), ("U", _cx(kept), 0)]


def test_iti45_query_records_the_query_by_parameter(server: str, engine: Engine) -> None:
    value = new_value()
    _send(server, ADD, feed_message(ADD, [(DOMAIN_A, value)]))
    message = query_message(DOMAIN_A, value)
    since = last_id(engine)
    _send(server, QUERY, message)
    record = one(records(engine, since, "ITI-45"))
    record.assert_event("110112", "E", 0, "ITI-45", "PIX Query")
    assert_patient(record, _cx(value))
    [query] = record.objects("2", "24")
    sent = next(message.iter("{urn:hl7-org:v3}queryByParameter"))
    assert etree.tostring(etree.fromstring(query_of(query)), method="c14n", exclusive=True) == \
        etree.tostring(sent, method="c14n", exclusive=True)
    assert details(query) == {"QueryEncoding": "UTF-8"}

    since = last_id(engine)
    _send(server, QUERY, query_message(DOMAIN_A, "NOPE" + value))
    assert one(records(engine, since, "ITI-45")).row.outcome == 8


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def test_iti10_notification_sent_is_a_patient_record_read(
        engine: Engine, settings: Settings, loop_thread: LoopThread) -> None:
    consumer = Consumer(loop_thread)
    consumer.start()
    own = dataclasses.replace(settings, pix_subscribers=consumer.url())
    index = PatientIndex(engine, own)
    task = loop_thread.spawn(run_notifier(index, own, poll_seconds=0.5))
    try:
        value = new_value()
        since = last_id(engine)
        index.feed([PatientIdentifier(DOMAIN_A, value)], Demographics(family="NOTIFIED"))
        consumer.next()
        found: list[Record] = []
        deadline = time.monotonic() + 15
        while not found and time.monotonic() < deadline:
            found = records(engine, since, "ITI-10")
            time.sleep(0.1)
    finally:
        loop_thread.loop.call_soon_threadsafe(task.cancel)
        consumer.stop()
        with engine.begin() as conn:
            conn.execute(delete(mpi_notification).where(
                mpi_notification.c.subscriber == consumer.url()))
    record = one(found)
    record.assert_event("110110", "R", 0, "ITI-10", "PIX Update Notification")
    assert _cx(value) in [o.get("ParticipantObjectID") for o in record.objects("1", "1")]
    us, other = record.participant(SOURCE), record.participant(DESTINATION)
    assert us.get("UserIsRequestor") == "true"
    assert (other.get("UserID"), other.get("UserIsRequestor")) == (consumer.url(), "false")
    assert other.get("NetworkAccessPointID") == "127.0.0.1"
