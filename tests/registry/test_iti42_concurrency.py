"""ITI-42 under concurrent submissions over real HTTP: uniqueId claims and RPLC races resolve to
exactly one winner and the proper IHE error code for the rest (ITI TF-2 §3.42.4.1.3.3, .5)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence

from lxml import etree
from sqlalchemy import Engine

from tests import samples, soapclient, xsd
from tests.registry.iti42_support import (
    R, assert_failure, assert_success, associations, entries, entry, folder_row,
    registered_folder, relationship_submission, rows, unique_id_of,
)
from tests.samples import APPROVED, DEPRECATED
from xds.store import tables

NewPatient = Callable[..., str]
THREADS = 8


def _submit_all(url: str, requests: Sequence[etree._Element]) -> list[etree._Element]:
    """Send every request from its own thread, released together by a barrier; the responses
    in request order."""
    barrier = threading.Barrier(len(requests))
    results: list[etree._Element | BaseException | None] = [None] * len(requests)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            _, body = soapclient.post(url, soapclient.ITI42, requests[i], timeout=120)
            results[i] = body
        except BaseException as exc:  # reported below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    bodies: list[etree._Element] = []
    for result in results:
        if not isinstance(result, etree._Element):
            raise AssertionError(f"a submission did not complete: {result!r}")
        xsd.assert_valid(result)
        bodies.append(result)
    return bodies


def _split(bodies: Sequence[etree._Element]) -> tuple[list[int], list[int]]:
    won = [i for i, b in enumerate(bodies) if soapclient.status(b) == soapclient.SUCCESS]
    lost = [i for i, b in enumerate(bodies) if i not in won]
    return won, lost


def test_same_document_unique_id_with_different_hashes_one_wins_rest_xds_non_identical_hash(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    uid = samples.new_oid()
    requests = [samples.single_document_submission(pid, unique_id=uid, content=b"v%d\n" % i)
                for i in range(THREADS)]
    bodies = _submit_all(registry_url, requests)
    won, lost = _split(bodies)
    assert len(won) == 1, [soapclient.registry_response_errors(b) for b in bodies]
    for i in lost:
        errors = assert_failure(bodies[i], "XDSNonIdenticalHash")
        assert [e.codeContext for e in errors] == [uid]

    (claim,) = rows(engine, tables.unique_id_claim, unique_id=uid)
    (de,) = entries(engine, pid)
    winner_hash = hashlib.sha1(b"v%d\n" % won[0]).hexdigest()
    assert de.unique_id == uid and de.hash == claim.hash == winner_hash
    assert len(rows(engine, tables.submission_set, patient_id=pid)) == 1
    assert len(associations(engine, pid)) == 1


def test_same_document_unique_id_with_identical_hash_all_succeed(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    uid = samples.new_oid()
    requests = [samples.single_document_submission(pid, unique_id=uid, content=b"same\n")
                for _ in range(THREADS)]
    for body in _submit_all(registry_url, requests):
        assert_success(body)
    assert len([r for r in entries(engine, pid) if r.unique_id == uid]) == THREADS
    assert len(rows(engine, tables.unique_id_claim, unique_id=uid)) == 1


def test_same_submission_set_unique_id_one_wins_rest_xds_duplicate_unique_id_in_registry(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    ss_uid = samples.new_oid()
    requests = [samples.single_document_submission(
        pid, submission_set_options={"unique_id": ss_uid}) for _ in range(THREADS)]
    de_uids = [unique_id_of(next(r.iter(R + "ExtrinsicObject"))) for r in requests]
    bodies = _submit_all(registry_url, requests)
    won, lost = _split(bodies)
    assert len(won) == 1, [soapclient.registry_response_errors(b) for b in bodies]
    for i in lost:
        assert_failure(bodies[i], "XDSDuplicateUniqueIdInRegistry")

    (ss,) = rows(engine, tables.submission_set, patient_id=pid)
    assert ss.unique_id == ss_uid
    (de,) = entries(engine, pid)
    assert de.unique_id == de_uids[won[0]] and de.submission_set_id == ss.id
    for i in lost:
        assert rows(engine, tables.unique_id_claim, unique_id=de_uids[i]) == []
    assert len(rows(engine, tables.unique_id_claim, unique_id=ss_uid)) == 1


def test_concurrent_rplc_of_one_document_one_wins_rest_xds_registry_deprecated_document_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id = samples.new_uuid()
    folder_id = registered_folder(registry_url, pid, with_document=old_id)
    new_uids = [samples.new_oid() for _ in range(4)]
    requests = [relationship_submission(pid, "RPLC", old_id, unique_id=u) for u in new_uids]
    bodies = _submit_all(registry_url, requests)
    won, lost = _split(bodies)
    assert len(won) == 1, [soapclient.registry_response_errors(b) for b in bodies]
    for i in lost:
        assert_failure(bodies[i], "XDSRegistryDeprecatedDocumentError")

    assert entry(engine, old_id).status == DEPRECATED
    stored = {r.unique_id: r for r in entries(engine, pid) if r.id != old_id}
    assert list(stored) == [new_uids[won[0]]]
    new = stored[new_uids[won[0]]]
    assert new.status == APPROVED
    for i in lost:
        assert rows(engine, tables.unique_id_claim, unique_id=new_uids[i]) == []
    # The winner's replacement joined the Folder exactly once; the losers left no association.
    in_folder = [a.target_id for a in associations(engine, pid) if a.source_id == folder_id]
    assert sorted(in_folder) == sorted([old_id, new.id])
    rplc = [a for a in associations(engine, pid)
            if a.association_type == samples.ASSOCIATION_TYPES["RPLC"]]
    assert [(a.source_id, a.target_id) for a in rplc] == [(new.id, old_id)]
    assert folder_row(engine, folder_id).status == APPROVED
    assert len(rows(engine, tables.submission_set, patient_id=pid)) == 2


def test_identical_documents_in_opposite_order_both_succeed(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    # Claims taken in different orders by concurrent transactions must not deadlock.
    pid = new_patient()
    for _ in range(5):
        uids = [samples.new_oid() for _ in range(6)]

        def request(order: Sequence[str]) -> etree._Element:
            docs = [samples.document_entry(f"Doc{n}", patient_id=pid, unique_id=u,
                                           content=u.encode()) for n, u in enumerate(order)]
            return samples.submit_objects_request([
                samples.submission_set(patient_id=pid), *docs,
                *(samples.has_member(f"ss-de{n}", "SubmissionSet01", f"Doc{n}", "Original")
                  for n in range(len(order)))])

        orders = [uids, uids[::-1]] * 2
        for body in _submit_all(registry_url, [request(order) for order in orders]):
            assert_success(body)
        for u in uids:
            assert len(rows(engine, tables.unique_id_claim, unique_id=u)) == 1


def test_concurrent_registrations_for_one_folder_all_bump_and_join_it(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    folder_id = registered_folder(registry_url, pid)
    requests = [samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.document_entry(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.has_member("fd-de", folder_id, "Document01"),
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de"),
    ]) for _ in range(THREADS)]
    for body in _submit_all(registry_url, requests):
        assert_success(body)
    in_folder = {a.target_id for a in associations(engine, pid) if a.source_id == folder_id}
    assert in_folder == {r.id for r in entries(engine, pid)} and len(in_folder) == THREADS
