"""The audit records of the FHIR facade beyond ITI-67/68/83: the ITI-65 import (and the XDS
transactions it runs in this process), ImagingStudy and Patient searches, and a refused search."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from tests.audit.transactions_support import (
    SOURCE, assert_patient, assert_us, last_id, one, query_of, records,
)
from tests.fhir.support import get
from tests.fhir.test_iti65 import Doc, post, provide_bundle
from xds.config import Settings


def test_iti65_is_an_import_of_the_submission_set(server: str, engine: Engine,
                                                  new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    published = provide_bundle(pid, [Doc(b"mhd audited\n")])
    since = last_id(engine)
    response = post(server, published.bundle)
    assert response.status_code == 200, response.text
    record = one(records(engine, since, "ITI-65"))
    record.assert_event("110107", "C", 0, "ITI-65", "Provide Document Bundle")
    assert_patient(record, pid)
    assert [o.get("ParticipantObjectID") for o in record.objects("2", "20")] == \
        [published.ss_unique_id]
    source = record.participant(SOURCE)
    assert (source.get("UserID"), source.get("UserIsRequestor")) == ("127.0.0.1", "true")
    assert_us(record, "/fhir")
    # What the facade ran in-process was registered (and audited) as well.
    registered = records(engine, since, "ITI-42", patient=pid)
    assert [r.row.outcome for r in registered if r.row.event_id == "110107"] == [0]


def test_imaging_study_search_is_a_query_without_ihe_transaction(
        server: str, engine: Engine, settings: Settings, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    value = pid.split("^")[0]
    since = last_id(engine)
    response = get(f"{server}/fhir/ImagingStudy",
                   {"patient.identifier": f"urn:oid:{settings.affinity_domain}|{value}"})
    assert response.status_code == 200, response.text
    [record] = [r for r in records(engine, since) if r.row.patient == pid]
    assert record.coded("EventID")[0] == "110112"
    assert record.ident.get("EventActionCode") == "E"
    assert record.coded("EventTypeCode") == (
        "search-type", "http://hl7.org/fhir/restful-interaction", "search-type")
    [query] = record.objects("2", "24")
    assert query.get("ParticipantObjectID") == "ImagingStudy"
    assert query_of(query).decode() == response.request.url.query.decode()


def test_patient_search_is_iti78_and_a_refused_search_fails(server: str, engine: Engine,
                                                           settings: Settings) -> None:
    since = last_id(engine)
    assert get(f"{server}/fhir/Patient", {"family": "NOBODY-AUDITED"}).status_code == 200
    record = one(records(engine, since, "ITI-78"))
    record.assert_event("110112", "E", 0, "ITI-78", "Mobile Patient Demographics Query")
    since = last_id(engine)
    assert get(f"{server}/fhir/DocumentReference", {"no-such-param": "x"}).status_code == 400
    failed = one(records(engine, since, "ITI-67"))
    assert failed.row.outcome == 8
    assert (failed.ident.findtext("EventOutcomeDescription") or "") == "HTTP 400"
