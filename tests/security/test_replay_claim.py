"""The XUA replay claim rides in the request's audit write (xds.security.replay.ReplayClaim).

These tests stage the race the SOAP endpoint cannot show on demand: an assertion that passed
the replay check, then was used by a concurrent request before this one wrote anything.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from tests import samples
from xds.audit.events import REQUEST, RequestInfo
from xds.audit.transactions import record_after
from xds.audit.xds_events import import_event
from xds.config import Settings
from xds.model.errors import XdsError
from xds.registry.context import Registry
from xds.registry.iti42 import register_document_set
from xds.security.replay import ReplayCache, ReplayClaim
from xds.store.db import write_transaction
from xds.store.tables import audit_outbox, document_entry


@pytest.fixture
def claim(engine: Engine) -> Iterator[ReplayClaim]:
    made = ReplayClaim(ReplayCache(engine), f"/xds/registry _{uuid.uuid4()}", time.time() + 300)
    token = REQUEST.set(RequestInfo(client="10.1.2.3", endpoint="/xds/registry", claim=made))
    try:
        yield made
    finally:
        REQUEST.reset(token)


def _outbox_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_outbox)).scalar_one())


def _entries_of(engine: Engine, patient: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(document_entry).where(
            document_entry.c.patient_id == patient)).scalar_one())


def test_a_registration_writes_the_assertion_id_with_its_audit_record(
        engine: Engine, settings: Settings, new_patient: Callable[..., str],
        claim: ReplayClaim) -> None:
    patient = new_patient()
    register_document_set(Registry(engine, settings), samples.single_document_submission(patient))
    assert claim.state == "committed"
    assert claim.cache.seen(claim.key)
    assert claim.settle()  # nothing left to write
    # The same assertion again, by another worker: refused.
    assert not ReplayClaim(ReplayCache(engine), claim.key, claim.expires).settle()


def test_a_registration_racing_a_replay_stores_nothing(
        engine: Engine, settings: Settings, new_patient: Callable[..., str],
        claim: ReplayClaim) -> None:
    patient = new_patient()
    assert ReplayCache(engine).first_use(claim.key, claim.expires)  # the other request won
    before = _outbox_rows(engine)
    with pytest.raises(XdsError):
        register_document_set(Registry(engine, settings),
                              samples.single_document_submission(patient))
    assert claim.state == "replayed" and not claim.settle()
    assert _entries_of(engine, patient) == 0
    assert _outbox_rows(engine) == before


def test_a_query_racing_a_replay_keeps_no_audit_record(
        engine: Engine, settings: Settings, claim: ReplayClaim) -> None:
    # A query's audit record is written in a transaction of its own, after the answer.
    assert ReplayCache(engine).first_use(claim.key, claim.expires)
    before = _outbox_rows(engine)
    body = samples.single_document_submission("1^^^&1.2.3&ISO")
    record_after(engine, settings, lambda: import_event(settings, "ITI-42", body))
    assert claim.state == "replayed" and not claim.settle()
    assert _outbox_rows(engine) == before


def test_a_claim_rolled_back_with_its_transaction_is_recorded_when_settled(
        engine: Engine, claim: ReplayClaim) -> None:
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        claim.record(conn)
        raise RuntimeError("the change failed after its audit record")
    assert claim.state == "inserted" and not claim.cache.seen(claim.key)
    assert claim.settle()
    assert claim.cache.seen(claim.key)


def test_a_request_that_wrote_nothing_claims_when_settled(claim: ReplayClaim) -> None:
    assert claim.pending
    assert claim.settle() and claim.cache.seen(claim.key)
    assert not ReplayClaim(claim.cache, claim.key, claim.expires).settle()


def test_later_audit_writes_of_the_request_do_not_write_the_claim_again(
        engine: Engine, claim: ReplayClaim) -> None:
    with write_transaction(engine) as conn:  # e.g. the success and failure records of a
        claim.record(conn)                    # PartialSuccess, or a second transaction
        claim.record(conn)
    with write_transaction(engine) as conn:
        claim.record(conn)
    assert claim.state == "committed" and claim.settle()


def test_a_replayed_claim_fails_every_retry_of_the_transaction(
        engine: Engine, claim: ReplayClaim) -> None:
    assert ReplayCache(engine).first_use(claim.key, claim.expires)
    for _ in range(2):
        with pytest.raises(IntegrityError), write_transaction(engine) as conn:
            claim.record(conn)
    assert claim.state == "replayed" and not claim.settle()
    with write_transaction(engine) as conn:  # the refusal's own Security Alert is written
        claim.record(conn)
