"""The audit records the transactions leave in ``audit_outbox``, at the real server over HTTP
and MLLP: EventID, action, outcome, EventTypeCode, participants and participant objects as the
digest §5.1 table and IPF's conventions have them; failures and partial answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
from lxml import etree
from sqlalchemy import Engine, select

from tests import samples, soapclient
from tests.audit.transactions_support import (
    DESTINATION, SOURCE, Record, assert_client_source, assert_patient, assert_us, details,
    last_id, one, query_of, records,
)
from tests.fhir.support import get
from tests.mpi import support as mpi
from tests.mpi.conftest import LoopThread
from tests.registry.iti42_support import assert_nothing_stored
from tests.repository.support import (
    Doc, assert_failure, assert_success, provide, retrieve, submission,
)
from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.mllp import start_mllp_server
from xds.store.patients import add_patient
from xds.store.tables import document_entry

SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
_R = f"{{{samples.NS_RIM}}}"


def ss_unique_id(sor: etree._Element) -> str:
    return next(ei.get("value") or "" for ei in sor.iter(_R + "ExternalIdentifier")
                if ei.get("identificationScheme") == SS_UNIQUE_ID)


# -- XDS.b -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Submitted:
    patient: str
    doc: Doc
    set_uid: str
    records: list[Record]


@pytest.fixture(scope="module")
def submitted(server: str, engine: Engine, new_patient_module: Callable[[], str]) -> Submitted:
    pid = new_patient_module()
    doc = Doc(b"audited document\n")
    sor = submission(pid, [doc])
    since = last_id(engine)
    assert_success(provide(server, pid, [doc], sor=sor))
    return Submitted(pid, doc, ss_unique_id(sor), records(engine, since))


@pytest.fixture(scope="module")
def new_patient_module(engine: Engine, settings: Settings) -> Callable[[], str]:
    def make() -> str:
        pid = samples.new_patient_id(settings.affinity_domain)
        add_patient(engine, pid)
        return pid
    return make


def test_iti41_is_an_import_from_the_document_source(submitted: Submitted) -> None:
    record = one([r for r in submitted.records if r.row.event_type == "ITI-41"])
    record.assert_event("110107", "C", 0, "ITI-41", "Provide and Register Document Set-b")
    assert_client_source(record)
    assert_us(record, "/xds/repository")
    assert_patient(record, submitted.patient)
    [ss] = record.objects("2", "20")
    assert ss.get("ParticipantObjectID") == submitted.set_uid
    assert ss.find("ParticipantObjectIDTypeCode").attrib == {  # type: ignore[union-attr]
        "csd-code": "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",
        "codeSystemName": "IHE XDS Metadata",
        "originalText": "submission set classificationNode"}


def test_iti42_is_exported_by_the_repository_and_imported_by_the_registry(
        submitted: Submitted) -> None:
    iti42 = [r for r in submitted.records if r.row.event_type == "ITI-42"]
    [export] = [r for r in iti42 if r.row.event_id == "110106"]
    [imported] = [r for r in iti42 if r.row.event_id == "110107"]
    export.assert_event("110106", "R", 0, "ITI-42", "Register Document Set-b")
    imported.assert_event("110107", "C", 0, "ITI-42", "Register Document Set-b")
    for record in (export, imported):
        assert_patient(record, submitted.patient)
        assert [o.get("ParticipantObjectID") for o in record.objects("2", "20")] == \
            [submitted.set_uid]
        # The repository is the source (the requestor), the registry the destination.
        source, destination = record.participant(SOURCE), record.participant(DESTINATION)
        assert (source.get("UserID") or "").endswith("/xds/repository")
        assert source.get("UserIsRequestor") == "true"
        assert (destination.get("UserID") or "").endswith("/xds/registry")
        assert destination.get("UserIsRequestor") == "false"


def test_iti18_query_records_the_adhoc_query(registry_url: str, engine: Engine,
                                             submitted: Submitted) -> None:
    request = samples.stored_query("FindDocuments", {
        "$XDSDocumentEntryPatientId": samples.quoted(submitted.patient),
        "$XDSDocumentEntryStatus": samples.quoted_list([samples.APPROVED])})
    since = last_id(engine)
    _, body = soapclient.post(registry_url, soapclient.ITI18, request)
    assert soapclient.status(body) == soapclient.SUCCESS
    record = one(records(engine, since, "ITI-18"))
    record.assert_event("110112", "E", 0, "ITI-18", "Registry Stored Query")
    assert_client_source(record)
    assert_us(record, "/xds/registry")
    assert_patient(record, submitted.patient)
    [query] = record.objects("2", "24")
    assert query.get("ParticipantObjectID") == samples.STORED_QUERIES["FindDocuments"]
    type_code = query.find("ParticipantObjectIDTypeCode")
    assert type_code is not None and type_code.get("csd-code") == "ITI-18"
    sent = request.find(_R + "AdhocQuery")
    assert sent is not None
    assert etree.tostring(etree.fromstring(query_of(query)), method="c14n", exclusive=True) == \
        etree.tostring(sent, method="c14n", exclusive=True)
    assert details(query)["QueryEncoding"] == "UTF-8"


def test_iti43_partial_success_gives_a_success_and_a_failure_record(
        server: str, engine: Engine, settings: Settings, submitted: Submitted) -> None:
    ours, unknown = settings.repository_unique_id, samples.new_oid()
    since = last_id(engine)
    reply = retrieve(server, [(ours, submitted.doc.unique_id), (ours, unknown)])
    assert_failure(reply, "XDSDocumentUniqueIdError", soapclient.PARTIAL_SUCCESS)
    found = records(engine, since, "ITI-43")
    assert sorted(r.row.outcome for r in found) == [0, 8]
    for record in found:
        record.assert_event("110106", "R", record.row.outcome, "ITI-43", "Retrieve Document Set")
        # IPF's retrieve convention: this repository is the source, the consumer requests.
        assert_us(record, "/xds/repository", role=SOURCE)
        assert_client_source(record, role=DESTINATION)
        [doc] = record.objects("2", "3")
        wanted = submitted.doc.unique_id if record.row.outcome == 0 else unknown
        assert doc.get("ParticipantObjectID") == wanted
        assert details(doc) == {"Repository Unique Id": ours}
        type_code = doc.find("ParticipantObjectIDTypeCode")
        assert type_code is not None and type_code.get("csd-code") == "9"


def test_refused_iti42_leaves_only_its_failure_record(registry_url: str, engine: Engine,
                                                      settings: Settings) -> None:
    pid = samples.new_patient_id(settings.affinity_domain)  # never fed: unknown
    since = last_id(engine)
    _, body = soapclient.post(registry_url, soapclient.ITI42,
                              samples.single_document_submission(pid))
    assert soapclient.error_codes(body) == ["XDSUnknownPatientId"]
    record = one(records(engine, since))
    record.assert_event("110107", "C", 8, "ITI-42", "Register Document Set-b")
    assert_patient(record, pid)
    assert "XDSUnknownPatientId" in (record.ident.findtext("EventOutcomeDescription") or "")
    assert_nothing_stored(engine, pid)


# -- PIX Manager over MLLP --------------------------------------------------------------------

@pytest.fixture(scope="module")
def mllp(engine: Engine, settings: Settings) -> Iterator[tuple[str, int]]:
    thread = LoopThread()
    server = thread.run(start_mllp_server(PatientIndex(engine, settings), settings,
                                          host="127.0.0.1", port=0))
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        thread.close_server(server)
        thread.close()


def test_iti8_feed_and_merge(mllp: tuple[str, int], engine: Engine) -> None:
    kept, merged = mpi.new_value(), mpi.new_value()
    kept_cx, merged_cx = mpi.cx(kept, mpi.GREEN), mpi.cx(merged, mpi.GREEN)
    since = last_id(engine)
    ack = mpi.exchange(mllp, mpi.adt("A01", kept_cx, control_id="CTRL-" + kept))
    assert mpi.field(ack, "MSA", 1) == "AA"
    record = one(records(engine, since, "ITI-8"))
    record.assert_event("110110", "C", 0, "ITI-8", "Patient Identity Feed")
    assert_patient(record, f"{kept}^^^&{mpi.GREEN}&ISO")
    assert details(record.objects("1", "1")[0]) == {"MSH-10": "CTRL-" + kept}
    source = record.participant(SOURCE)
    assert source.get("UserID") == "HOSP|ADT"  # MSH-4|MSH-3 (IPF)
    assert source.get("UserIsRequestor") == "true"
    assert source.get("NetworkAccessPointID") == "127.0.0.1"
    destination = record.participant(DESTINATION)
    assert destination.get("UserID") == f"mllp://127.0.0.1:{mllp[1]}"
    assert destination.get("UserIsRequestor") == "false"

    assert mpi.field(mpi.exchange(mllp, mpi.adt("A01", merged_cx)), "MSA", 1) == "AA"
    since = last_id(engine)
    ack = mpi.exchange(mllp, mpi.adt("A40", kept_cx, mrg1=merged_cx))
    assert mpi.field(ack, "MSA", 1) == "AA"
    found = records(engine, since, "ITI-8")
    assert [(r.ident.get("EventActionCode"), r.row.patient) for r in found] == [
        ("D", f"{merged}^^^&{mpi.GREEN}&ISO"), ("U", f"{kept}^^^&{mpi.GREEN}&ISO")]


def test_iti9_query_records_the_qpd(mllp: tuple[str, int], engine: Engine) -> None:
    value = mpi.new_value()
    assert mpi.field(mpi.exchange(mllp, mpi.adt("A01", mpi.cx(value, mpi.GREEN))),
                     "MSA", 1) == "AA"
    since = last_id(engine)
    message = mpi.qbp(mpi.cx(value, mpi.GREEN), f"^^^&{mpi.AFFINITY}&ISO",
                      control_id="Q-" + value, tag="TAG-" + value)
    assert mpi.field(mpi.exchange(mllp, message), "MSA", 1) == "AA"
    record = one(records(engine, since, "ITI-9"))
    record.assert_event("110112", "E", 0, "ITI-9", "PIX Query")
    assert_patient(record, f"{value}^^^&{mpi.GREEN}&ISO")
    [query] = record.objects("2", "24")
    qpd = next(s for s in message.split("\r") if s.startswith("QPD"))
    assert query_of(query).decode() == qpd
    assert details(query) == {"QueryEncoding": "UTF-8", "MSH-10": "Q-" + value}

    since = last_id(engine)
    unknown = mpi.qbp(mpi.cx("NOPE" + value, mpi.GREEN))
    assert mpi.field(mpi.exchange(mllp, unknown), "MSA", 1) == "AE"
    assert one(records(engine, since, "ITI-9")).row.outcome == 8


# -- FHIR --------------------------------------------------------------------------------------

def test_fhir_document_reference_search_is_an_iti67_query(
        server: str, engine: Engine, submitted: Submitted) -> None:
    value, _, rest = submitted.patient.partition("^^^&")
    system = "urn:oid:" + rest.split("&")[0]
    since = last_id(engine)
    response = get(f"{server}/fhir/DocumentReference",
                            {"patient.identifier": f"{system}|{value}", "status": "current"})
    assert response.status_code == 200, response.text
    record = one(records(engine, since, "ITI-67"))
    record.assert_event("110112", "E", 0, "ITI-67", "Mobile Document Reference Query")
    assert_patient(record, submitted.patient)
    [query] = record.objects("2", "24")
    assert query_of(query).decode() == response.request.url.query.decode()
    source = record.participant(SOURCE)
    assert source.get("NetworkAccessPointID") == "127.0.0.1"
    assert_us(record, "/fhir/DocumentReference")


def test_pixm_query_is_an_iti83_query(server: str, mllp: tuple[str, int],
                                      engine: Engine) -> None:
    value = mpi.new_value()
    assert mpi.field(mpi.exchange(mllp, mpi.adt("A01", mpi.cx(value, mpi.GREEN))),
                     "MSA", 1) == "AA"
    since = last_id(engine)
    response = get(f"{server}/fhir/Patient/$ihe-pix",
                            {"sourceIdentifier": f"urn:oid:{mpi.GREEN}|{value}"})
    assert response.status_code == 200, response.text
    record = one(records(engine, since, "ITI-83"))
    record.assert_event("110112", "E", 0, "ITI-83",
                        "Mobile Patient Identifier Cross-reference Query")
    assert_patient(record, f"{value}^^^&{mpi.GREEN}&ISO")
    since = last_id(engine)
    missing = get(f"{server}/fhir/Patient/$ihe-pix",
                           {"sourceIdentifier": f"urn:oid:{mpi.GREEN}|NOPE{value}"})
    assert missing.status_code == 404
    assert one(records(engine, since, "ITI-83")).row.outcome == 8


def test_fhir_binary_is_an_iti68_export(server: str, engine: Engine, settings: Settings,
                                        submitted: Submitted) -> None:
    with engine.connect() as conn:
        entry_uuid = str(conn.execute(select(document_entry.c.id).where(
            document_entry.c.unique_id == submitted.doc.unique_id)).scalar_one())
    entry_uuid = entry_uuid.removeprefix("urn:uuid:")  # the Binary id
    since = last_id(engine)
    response = get(f"{server}/fhir/Binary/{entry_uuid}", Accept="*/*")
    assert response.status_code == 200 and response.content == submitted.doc.content
    record = one(records(engine, since, "ITI-68"))
    record.assert_event("110106", "R", 0, "ITI-68", "Mobile Document Retrieval")
    assert_us(record, f"/fhir/Binary/{entry_uuid}", role=SOURCE)
    assert record.participant(DESTINATION).get("UserIsRequestor") == "true"
    [doc] = record.objects("2", "3")
    assert doc.get("ParticipantObjectID") == entry_uuid
    assert details(doc) == {"Repository Unique Id": settings.repository_unique_id}
