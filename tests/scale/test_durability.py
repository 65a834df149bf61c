"""Crash safety: 8 submitters x 500 ITI-41 against two ``xds serve`` processes over one
PostgreSQL and one S3 store, one of them ``kill -9``-ed and restarted twice mid-run.

Every submission answered Success must be found by ITI-18 and retrieved byte-identical by
ITI-43; no submission may be half visible (in the registry without its bytes); ``xds blobs gc``
afterwards removes only what the killed requests left.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import select

from tests import samples, soapclient
from tests.registry.iti18_support import query
from tests.repository.support import ITI41, ITI41_RESPONSE, ITI43_RESPONSE, PATH, Doc, \
    assert_success, document_responses, pnr, reply_of, retrieve, submission
from tests.samples import APPROVED, quoted, quoted_list
from tests.conftest import fresh_database
from tests.scale.support import ServeProcess
from tests.seaweed import BUCKET, Seaweed
from xds.config import Settings
from xds.soap import bytes_attachment, encode_mtom
from xds.store.blobs import open_blob_store
from xds.store.db import migrate, open_engine
from xds.store.maintenance import collect_garbage
from xds.store.patients import add_patient
from xds.store.tables import document_entry, repository_document

SUBMITTERS = int(os.environ.get("XDS_TEST_SUBMITTERS", "8"))
PER_SUBMITTER = int(os.environ.get("XDS_TEST_PER_SUBMITTER", "500"))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One submission: its document and what the server answered (``success``, an error code,
    or ``transport`` when the connection broke)."""

    unique_id: str
    patient_id: str
    content: bytes
    answer: str


@pytest.fixture
def cluster(seaweed: Seaweed, tmp_path: Path) -> Iterator[tuple[Settings, list[ServeProcess]]]:
    with fresh_database("postgresql", tmp_path) as url:
        prefix = f"durability-{os.getpid()}-{time.time_ns()}"
        settings = Settings(data_dir=tmp_path / "check", database_url=url,
                            blob_url=seaweed.url(BUCKET, prefix))
        migrate_engine = open_engine(settings)
        migrate(migrate_engine)  # once, before two processes start on the same database
        migrate_engine.dispose()
        workers = [ServeProcess(tmp_path / f"worker{n}", settings) for n in range(2)]
        try:
            for worker in workers:
                worker.start()
            yield settings, workers
        finally:
            for worker in workers:
                worker.stop()


def _submit(client: httpx.Client, base: str, pid: str, content: bytes) -> Outcome:
    doc = Doc(content, "application/octet-stream")
    envelope = soapclient.envelope(ITI41, pnr(submission(pid, [doc]), [doc]))
    stream = encode_mtom(envelope, [bytes_attachment(content, doc.content_id, doc.mime_type)])
    try:
        response = client.post(base + PATH, content=stream.iter_bytes(), headers=stream.headers)
        reply = reply_of(response, validate=False)
    except (httpx.HTTPError, AssertionError, etree.XMLSyntaxError, KeyError) as exc:
        return Outcome(doc.unique_id, pid, content, f"transport:{type(exc).__name__}")
    assert soapclient.header(reply.envelope, "Action") == ITI41_RESPONSE
    if soapclient.status(reply.body) == soapclient.SUCCESS:
        return Outcome(doc.unique_id, pid, content, "success")
    codes = soapclient.error_codes(reply.body)
    return Outcome(doc.unique_id, pid, content, ",".join(c or "" for c in codes))


def test_kill_9_mid_run_loses_no_acknowledged_submission_and_leaves_nothing_half_visible(
        cluster: tuple[Settings, list[ServeProcess]]) -> None:
    settings, workers = cluster
    engine = open_engine(settings)
    patients = [samples.new_patient_id(settings.affinity_domain) for _ in range(SUBMITTERS)]
    for pid in patients:
        add_patient(engine, pid)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    done = threading.Event()
    progress = [0]

    def submitter(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(timeout=60) as client:
            for i in range(PER_SUBMITTER):
                # Some bytes repeat across submitters: dedup under crashes too.
                content = (b"shared-%d" % (i % 50)) if i % 10 == 0 else rng.randbytes(
                    rng.randrange(200, 6000))
                outcome = _submit(client, workers[(n + i) % 2].base_url, patients[n], content)
                with lock:
                    outcomes.append(outcome)
                    progress[0] += 1

    def killer() -> None:
        total = SUBMITTERS * PER_SUBMITTER
        for fraction in (0.3, 0.6):
            while progress[0] < total * fraction and not done.is_set():
                time.sleep(0.05)
            if done.is_set():
                return
            workers[0].kill9()
            time.sleep(0.5)
            workers[0].start()

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(SUBMITTERS)]
    kill = threading.Thread(target=killer)
    for t in [*threads, kill]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    kill.join()
    assert workers[0].kills == 2, "the worker was not killed twice during the run"

    acknowledged = [o for o in outcomes if o.answer == "success"]
    unacknowledged = [o for o in outcomes if o.answer != "success"]
    assert len(outcomes) == SUBMITTERS * PER_SUBMITTER
    assert len(acknowledged) > 0.8 * len(outcomes), {o.answer for o in unacknowledged}
    # Every failure is a broken connection to the killed worker or a clean retryable answer.
    assert {o.answer.split(":")[0] for o in unacknowledged} <= {
        "transport", "XDSRepositoryBusy", "XDSRegistryBusy"}, {o.answer for o in unacknowledged}

    base = workers[1].base_url
    # ITI-18 finds every acknowledged submission (and nothing registered lacks its bytes).
    registered: dict[str, str] = {}
    for pid in patients:
        answer = query(base + "/xds/registry", "FindDocuments", [
            ("$XDSDocumentEntryPatientId", quoted(pid)),
            ("$XDSDocumentEntryStatus", quoted_list((APPROVED,)))])
        assert answer.status == soapclient.SUCCESS, answer.errors
        for obj_id in answer.document_entries:
            el = answer.elements[obj_id]
            uid = next(ei.get("value") for ei in el.iter("{*}ExternalIdentifier")
                       if ei.get("identificationScheme") == samples.DE.uniqueId)
            registered[str(uid)] = answer.slot(obj_id, "hash")[0]
    missing = [o.unique_id for o in acknowledged if o.unique_id not in registered]
    assert missing == [], f"{len(missing)} acknowledged submissions not found by ITI-18"

    by_uid = {o.unique_id: o for o in outcomes}
    for o in outcomes:
        if o.unique_id in registered:
            assert registered[o.unique_id] == hashlib.sha1(o.content).hexdigest()
    _assert_retrievable(base, settings, [by_uid[uid] for uid in registered])

    # What the killed requests left: repository rows never registered, objects no row keeps.
    with engine.connect() as conn:
        stored = set(conn.execute(select(repository_document.c.document_unique_id)).scalars())
        in_registry = set(conn.execute(select(document_entry.c.unique_id)).scalars())
    assert in_registry == set(registered)
    left_rows = stored - in_registry
    assert left_rows <= {o.unique_id for o in unacknowledged}
    blobs = open_blob_store(settings)
    # The run is over and nothing is in flight: no grace needed to tell leftovers apart.
    report = collect_garbage(engine, blobs, grace=0, in_flight=0, registry_is_local=True)
    assert report.unregistered_rows == len(left_rows)
    kept = {hashlib.sha256(by_uid[uid].content).hexdigest() for uid in registered}
    killed = {hashlib.sha256(o.content).hexdigest() for o in unacknowledged}
    assert set(report.removed_keys) <= killed - kept
    assert report.removed + report.unregistered_rows <= len(unacknowledged)
    # Nothing acknowledged was collected: everything is still retrievable.
    _assert_retrievable(base, settings, [by_uid[uid] for uid in registered])
    engine.dispose()


def _assert_retrievable(base: str, settings: Settings, outcomes: list[Outcome]) -> None:
    for start in range(0, len(outcomes), 100):
        batch = outcomes[start:start + 100]
        reply = retrieve(base, [(settings.repository_unique_id, o.unique_id) for o in batch])
        assert_success(reply, ITI43_RESPONSE)
        got = {r.document_unique_id: r.content for r in document_responses(reply)}
        assert got == {o.unique_id: o.content for o in batch}
