"""The issue's end-to-end audit proof: a real syslog ARR (TLS, TCP, UDP) receives, for an
ITI-8 feed -> C-STORE -> ITI-41 submit -> ITI-18 query -> ITI-43 retrieve -> RAD-69 -> ITI-9 PIX
query sequence at the whole server, exactly the expected audit messages, each parsed and checked
field by field (syslog header, EventIdentification, ActiveParticipants, AuditSource,
ParticipantObjects); the ARR is stopped after the query and restarted after the PIX query:
every transaction answered while it was down, promptly, and no record was lost (at least once:
a stream transport may repeat a record it had already delivered, nothing else). Over UDP too:
the transport's connected socket sees the ICMP port unreachable of the stopped ARR as
ECONNREFUSED, so the sender keeps the record for a retry rather than stamping it sent.

TLS runs on SQLite and PostgreSQL (skipped without one), TCP and UDP on SQLite; each builds
its own database, receiver (mutual TLS with ``tls_files``) and server on free ports.
"""

from __future__ import annotations

import io
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from lxml import etree
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import Engine, select

from tests import samples, soapclient
from tests.audit.conftest import TlsFiles
from tests.audit.receiver import Received, SyslogReceiver
from tests.audit.transactions_support import (
    ANONYMOUS, DESTINATION, SOURCE, Record, assert_client_source, assert_patient, details,
    query_of,
)
from tests.conftest import fresh_database
from tests.imaging.dicomgen import make_study
from tests.imaging.test_rad69 import rad69_request, send
from tests.mpi import support as mpi
from tests.repository.support import (
    ITI43_RESPONSE, Doc, assert_success, document_responses, provide, retrieve, submission,
)
from tests.server import free_port, running_server
from xds.app import build_app
from xds.audit.message import event_datetime
from xds.config import Settings
from xds.dicom.uids import EXPLICIT_LE
from xds.store.db import open_engine
from xds.store.tables import audit_outbox

BOM = b"\xef\xbb\xbf"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SUBMISSION_SET_TYPE = {"csd-code": "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",
                       "codeSystemName": "IHE XDS Metadata",
                       "originalText": "submission set classificationNode"}
CALLING_AE = "AUDIT_SEQ"
#: A transaction answered while the ARR is down must not wait for it: a generous bound.
PROMPT = 5.0
#: How long the restarted ARR may take to receive the backlog (the sender's backoff).
CATCH_UP = 60.0
_R = f"{{{samples.NS_RIM}}}"


# -- the database, the ARR and the server ------------------------------------------------------



def _receiver(kind: str, tls_files: TlsFiles) -> SyslogReceiver:
    return SyslogReceiver(kind, tls_files.server_context() if kind == "tls" else None)


def _settings(kind: str, url: str, arr: SyslogReceiver, tls_files: TlsFiles,
              data_dir: Path) -> Settings:
    settings = Settings(data_dir=data_dir, database_url=url, port=free_port(),
                        mllp_port=free_port(), dicom_port=free_port(), audit_url=arr.url,
                        audit_source_id=f"xds-sequence-{kind}")
    if kind == "tls":
        # The node presents its client certificate and verifies the ARR against the CA; its
        # own ports stay plain (tls_cert unset).
        settings = tls_files.client_settings(settings, arr.url)
    return settings


def _seconds(call: Callable[[], None]) -> float:
    start = time.monotonic()
    call()
    return time.monotonic() - start


def _outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_outbox).order_by(audit_outbox.c.id)))


def _row(engine: Engine, row_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(audit_outbox).where(audit_outbox.c.id == row_id)).one()


def _wire(row: Any) -> bytes:
    """The MSG part a row must arrive as: the BOM, then its AuditMessage in UTF-8."""
    return BOM + str(row.message).encode("utf-8")


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def _delivered(arr: SyslogReceiver, engine: Engine) -> bool:
    """Every outbox row so far stamped sent and received by the ARR."""
    rows = _outbox(engine)
    got = {m.msg for m in list(arr.messages)}
    return all(r.sent is not None and _wire(r) in got for r in rows)


# -- what the sequence did ---------------------------------------------------------------------

@dataclass
class Steps:
    """What the sequence did: the ids, uids and requests the records must name."""

    settings: Settings
    affinity_cx: str
    local_cx: str
    feed_control: str
    doc: Doc
    set_uid: str
    study_uid: str
    series_uid: str
    sops: list[str]
    query: etree._Element
    qpd: str
    query_tag: str
    query_control: str


def _ss_unique_id(sor: etree._Element) -> str:
    return next(ei.get("value") or "" for ei in sor.iter(_R + "ExternalIdentifier")
                if ei.get("identificationScheme") == SS_UNIQUE_ID)


def _c_store(settings: Settings, files: list[Path]) -> None:
    ae = AE(ae_title=CALLING_AE)
    ae.add_requested_context(CTImageStorage, [EXPLICIT_LE])
    assoc = ae.associate("127.0.0.1", settings.dicom_port, ae_title=settings.dicom_ae_title)
    assert assoc.is_established
    try:
        statuses = [assoc.send_c_store(path) for path in files]
    finally:
        assoc.release()
    assert [s.Status for s in statuses] == [0x0000] * len(files)


def _pix_query(address: tuple[str, int], seq: Steps) -> None:
    message = mpi.qbp(seq.local_cx, f"^^^&{seq.settings.affinity_domain}&ISO",
                      control_id=seq.query_control, tag=seq.query_tag)
    answer = mpi.exchange(address, message)
    assert mpi.field(answer, "MSA", 1) == "AA"
    assert mpi.field(answer, "QAK", 2) == "OK"
    assert mpi.field(answer, "PID", 3) == seq.affinity_cx


def _retrieve(base: str, seq: Steps) -> None:
    reply = retrieve(base, [(seq.settings.repository_unique_id, seq.doc.unique_id)])
    assert_success(reply, ITI43_RESPONSE)
    [got] = document_responses(reply)
    assert (got.document_unique_id, got.content) == (seq.doc.unique_id, seq.doc.content)


def _rad69(base: str, seq: Steps) -> None:
    source = seq.settings.imaging_source_unique_id
    reply = send(base, rad69_request([(seq.study_uid, seq.series_uid, source, sop)
                                      for sop in seq.sops]))
    assert_success(reply, ITI43_RESPONSE)
    got = document_responses(reply)
    assert [r.document_unique_id for r in got] == seq.sops
    for r in got:
        ds = pydicom.dcmread(io.BytesIO(r.content))
        assert (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.PatientID) == \
            (r.document_unique_id, seq.study_uid, seq.affinity_cx.split("^")[0])


# -- field-by-field checks of the messages received --------------------------------------------

def _assert_header(message: Received, settings: Settings) -> None:
    """RFC 5424 as digest §5.2 has it: ``<85>1 TS HOST APP PROCID IHE+RFC-3881 - BOM<?xml``."""
    assert (message.pri, message.version) == ("85", "1")
    assert message.app_name == settings.audit_source_id
    assert message.msgid == "IHE+RFC-3881"
    assert message.structured_data == "-"
    assert message.procid == str(os.getpid())
    assert message.hostname == socket.gethostname()
    assert message.msg.startswith(BOM + b'<?xml version="1.0" encoding="UTF-8"?><AuditMessage>')
    ident = message.xml.find("EventIdentification")
    assert ident is not None
    assert message.timestamp == ident.get("EventDateTime")


def _assert_source(record: Record, settings: Settings) -> None:
    sources = record.root.findall("AuditSourceIdentification")
    assert len(sources) == 1
    assert sources[0].get("AuditSourceID") == settings.audit_source_id
    type_code = sources[0].find("AuditSourceTypeCode")
    assert type_code is not None and type_code.get("csd-code") == "4"


def _assert_node(participant: etree._Element, user_id: str, requestor: str) -> None:
    assert participant.get("UserID") == user_id
    assert participant.get("UserIsRequestor") == requestor
    assert participant.get("NetworkAccessPointID") == "127.0.0.1"
    assert participant.get("NetworkAccessPointTypeCode") == "2"


def _assert_ours(record: Record, user_id: str, role: str) -> None:
    """This node: the endpoint or AE called, not the requestor, our process id, 127.0.0.1."""
    ours = record.participant(role)
    _assert_node(ours, user_id, "false")
    assert ours.get("AlternativeUserID") == str(os.getpid())


def _participant_roles(record: Record) -> list[str]:
    return sorted(r.get("csd-code") or "" for r in record.root.iterfind("ActiveParticipant/RoleIDCode"))


def _objects(record: Record) -> list[tuple[str | None, str | None, str | None]]:
    return [(o.get("ParticipantObjectTypeCode"), o.get("ParticipantObjectTypeCodeRole"),
             o.get("ParticipantObjectID"))
            for o in record.root.iterfind("ParticipantObjectIdentification")]


def _id_type(obj: etree._Element) -> tuple[str | None, str | None, str | None]:
    el = obj.find("ParticipantObjectIDTypeCode")
    assert el is not None
    return el.get("csd-code"), el.get("codeSystemName"), el.get("originalText")


def _check_application(record: Record, seq: Steps, code: str, display: str) -> None:
    assert record.coded("EventID") == ("110100", "DCM", "Application Activity")
    assert record.coded("EventTypeCode") == (code, "DCM", display)
    assert record.ident.get("EventActionCode") == "E"
    assert record.ident.get("EventOutcomeIndicator") == "0"
    [app] = record.root.findall("ActiveParticipant")
    assert app.get("UserID") == seq.settings.audit_source_id
    assert app.get("UserIsRequestor") == "true"
    assert app.get("AlternativeUserID") == str(os.getpid())
    assert (app.get("NetworkAccessPointID"), app.get("NetworkAccessPointTypeCode")) == \
        (socket.gethostname(), "1")
    assert _participant_roles(record) == ["110150"]
    assert _objects(record) == []


def _check_iti8(record: Record, seq: Steps) -> None:
    record.assert_event("110110", "C", 0, "ITI-8", "Patient Identity Feed")
    _assert_node(record.participant(SOURCE), "HOSP|ADT", "true")  # MSH-4|MSH-3 (IPF)
    _assert_ours(record, f"mllp://127.0.0.1:{seq.settings.mllp_port}", DESTINATION)
    assert _participant_roles(record) == [DESTINATION, SOURCE]
    patients = record.objects("1", "1")
    assert [p.get("ParticipantObjectID") for p in patients] == [seq.local_cx, seq.affinity_cx]
    for p in patients:
        assert _id_type(p) == ("2", "RFC-3881", "Patient Number")
        assert details(p) == {"MSH-10": seq.feed_control}
    assert len(_objects(record)) == 2


def _check_rad8(record: Record, seq: Steps) -> str:
    record.assert_event("110104", "C", 0, "RAD-8", "Modality Images Stored")
    _assert_node(record.participant(SOURCE), CALLING_AE, "true")
    _assert_ours(record, seq.settings.dicom_ae_title, DESTINATION)
    assert_patient(record, seq.affinity_cx)
    [study] = record.objects("2", "3")
    assert study.get("ParticipantObjectID") == seq.study_uid
    assert _id_type(study) == ("110180", "DCM", "Study Instance UID")
    found = details(study)
    assert found == {"ihe:DocumentUniqueId": found.get("ihe:DocumentUniqueId", "?"),
                     "Series Instance Unique Id": seq.series_uid,
                     "Repository Unique Id": seq.settings.imaging_source_unique_id}
    assert len(_objects(record)) == 2
    return found["ihe:DocumentUniqueId"]


def _check_submission_set(record: Record, seq: Steps) -> None:
    assert_patient(record, seq.affinity_cx)
    [ss] = record.objects("2", "20")
    assert ss.get("ParticipantObjectID") == seq.set_uid
    assert ss.find("ParticipantObjectIDTypeCode").attrib == SUBMISSION_SET_TYPE  # type: ignore[union-attr]
    assert len(_objects(record)) == 2


def _check_iti41(record: Record, seq: Steps) -> None:
    record.assert_event("110107", "C", 0, "ITI-41", "Provide and Register Document Set-b")
    assert_client_source(record)
    _assert_ours(record, seq.settings.base_url + "/xds/repository", DESTINATION)
    assert _participant_roles(record) == [DESTINATION, SOURCE]
    _check_submission_set(record, seq)


def _check_iti42(record: Record, seq: Steps) -> None:
    """The in-process registration: the repository (source, the requestor) registers at the
    registry (destination); the export is the repository's record, the import the registry's."""
    export = record.row.event_id == "110106"
    record.assert_event(record.row.event_id, "R" if export else "C", 0, "ITI-42",
                        "Register Document Set-b")
    base = seq.settings.base_url
    source, destination = record.participant(SOURCE), record.participant(DESTINATION)
    _assert_node(source, base + "/xds/repository", "true")
    _assert_node(destination, base + "/xds/registry", "false")
    ours, theirs = (source, destination) if export else (destination, source)
    assert ours.get("AlternativeUserID") == str(os.getpid())
    assert theirs.get("AlternativeUserID") is None
    assert _participant_roles(record) == [DESTINATION, SOURCE]
    _check_submission_set(record, seq)


def _check_iti18(record: Record, seq: Steps) -> None:
    record.assert_event("110112", "E", 0, "ITI-18", "Registry Stored Query")
    assert_client_source(record)
    assert record.participant(SOURCE).get("UserID") == ANONYMOUS
    _assert_ours(record, seq.settings.base_url + "/xds/registry", DESTINATION)
    assert_patient(record, seq.affinity_cx)
    [query] = record.objects("2", "24")
    assert query.get("ParticipantObjectID") == samples.STORED_QUERIES["FindDocuments"]
    assert _id_type(query) == ("ITI-18", "IHE Transactions", "Registry Stored Query")
    sent = seq.query.find(_R + "AdhocQuery")
    assert sent is not None
    assert etree.tostring(etree.fromstring(query_of(query)), method="c14n", exclusive=True) == \
        etree.tostring(sent, method="c14n", exclusive=True)
    assert details(query) == {"QueryEncoding": "UTF-8"}
    assert len(_objects(record)) == 2


def _check_iti43(record: Record, seq: Steps) -> None:
    record.assert_event("110106", "R", 0, "ITI-43", "Retrieve Document Set")
    # IPF's retrieve convention: this repository is the source, the consumer requests.
    _assert_ours(record, seq.settings.base_url + "/xds/repository", SOURCE)
    assert_client_source(record, role=DESTINATION)
    [doc] = record.objects("2", "3")
    assert doc.get("ParticipantObjectID") == seq.doc.unique_id
    assert _id_type(doc) == ("9", "RFC-3881", "Report Number")
    assert details(doc) == {"Repository Unique Id": seq.settings.repository_unique_id}
    assert len(_objects(record)) == 1


def _check_rad69(record: Record, seq: Steps) -> None:
    record.assert_event("110104", "R", 0, "RAD-69", "Retrieve Imaging Document Set")
    _assert_ours(record, seq.settings.base_url + "/xds/imaging", SOURCE)
    assert_client_source(record, role=DESTINATION)
    assert_patient(record, seq.affinity_cx)
    studies = record.objects("2", "3")
    assert [s.get("ParticipantObjectID") for s in studies] == [seq.study_uid] * len(seq.sops)
    assert [details(s) for s in studies] == [
        {"ihe:DocumentUniqueId": sop, "Series Instance Unique Id": seq.series_uid,
         "Repository Unique Id": seq.settings.imaging_source_unique_id} for sop in seq.sops]
    assert {_id_type(s) for s in studies} == {("110180", "DCM", "Study Instance UID")}
    assert len(_objects(record)) == 1 + len(seq.sops)


def _check_iti9(record: Record, seq: Steps) -> None:
    record.assert_event("110112", "E", 0, "ITI-9", "PIX Query")
    _assert_node(record.participant(SOURCE), "HOSP|CONSUMER", "true")
    _assert_ours(record, f"mllp://127.0.0.1:{seq.settings.mllp_port}", DESTINATION)
    assert_patient(record, seq.local_cx)
    [query] = record.objects("2", "24")
    assert query.get("ParticipantObjectID") == seq.query_tag
    assert _id_type(query) == ("ITI-9", "IHE Transactions", "PIX Query")
    assert query_of(query).decode() == seq.qpd
    assert details(query) == {"QueryEncoding": "UTF-8", "MSH-10": seq.query_control}
    assert len(_objects(record)) == 2


#: Every record of the sequence, by (EventID, EventTypeCode), with how many there must be.
EXPECTED = Counter({
    ("110100", "110120"): 1,  # Application Start
    ("110110", "ITI-8"): 1,
    ("110104", "RAD-8"): 2,  # one per instance stored
    ("110107", "ITI-41"): 1,
    ("110106", "ITI-42"): 1,  # the repository's export to the registry
    ("110107", "ITI-42"): 1,  # the registry's import
    ("110112", "ITI-18"): 1,
    ("110106", "ITI-43"): 1,
    ("110104", "RAD-69"): 1,
    ("110112", "ITI-9"): 1,
    ("110100", "110121"): 1,  # Application Stop
})
#: What the ARR misses while it is down: the transactions of the outage.
DURING_OUTAGE = Counter({("110106", "ITI-43"): 1, ("110104", "RAD-69"): 1,
                         ("110112", "ITI-9"): 1})


def _check(record: Record, seq: Steps) -> str | None:
    key = (record.row.event_id, record.row.event_type)
    if key == ("110100", "110120"):
        _check_application(record, seq, "110120", "Application Start")
    elif key == ("110100", "110121"):
        _check_application(record, seq, "110121", "Application Stop")
    elif key[1] == "ITI-8":
        _check_iti8(record, seq)
    elif key[1] == "RAD-8":
        return _check_rad8(record, seq)
    elif key[1] == "ITI-41":
        _check_iti41(record, seq)
    elif key[1] == "ITI-42":
        _check_iti42(record, seq)
    elif key[1] == "ITI-18":
        _check_iti18(record, seq)
    elif key[1] == "ITI-43":
        _check_iti43(record, seq)
    elif key[1] == "RAD-69":
        _check_rad69(record, seq)
    elif key[1] == "ITI-9":
        _check_iti9(record, seq)
    else:
        raise AssertionError(f"unexpected audit record {key}")
    return None


# -- the test ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "backend"), [
    pytest.param("tls", "sqlite", id="tls-sqlite"),
    pytest.param("tls", "postgresql", id="tls-postgresql"),
    pytest.param("tcp", "sqlite", id="tcp-sqlite"),
    pytest.param("udp", "sqlite", id="udp-sqlite"),
])
def test_sequence_reaches_the_arr_through_an_outage(kind: str, backend: str, tmp_path: Path,
                                                    tls_files: TlsFiles) -> None:
    with fresh_database(backend, tmp_path) as url, _receiver(kind, tls_files) as arr:
        settings = _settings(kind, url, arr, tls_files, tmp_path / "data")
        engine = open_engine(settings)
        try:
            seq, outage_rows, before_outage = _run(settings, engine, arr, tmp_path)
            # The server stopped: Application Stop went out on the way down.
            _poll(lambda: _delivered(arr, engine), 10, "Application Stop delivered")
            rows = _outbox(engine)
        finally:
            engine.dispose()
    received = list(arr.messages)

    # Every outbox row stamped sent; the ARR holds exactly those records, nothing else.
    assert [r.id for r in rows if r.sent is None] == []
    assert Counter((r.event_id, r.event_type) for r in rows) == EXPECTED
    by_wire = {_wire(r): r for r in rows}
    assert len(by_wire) == len(rows)
    assert [m.msg for m in received if m.msg not in by_wire] == []
    # At least once: a record may arrive twice (a stream transport's resend), none is missing,
    # and the first arrivals follow the outbox order.
    first = list(dict.fromkeys(m.msg for m in received))
    assert first == [_wire(r) for r in rows]
    if kind == "udp":
        assert len(received) == len(rows)  # a datagram is never resent once taken
    assert before_outage == [_wire(r) for r in rows if r.id < outage_rows[0]]

    # Field by field, each message as the ARR received it (a repeat is checked again).
    stored_sops: dict[int, str] = {}
    for message in received:
        _assert_header(message, settings)
        record = Record(by_wire[message.msg], message.xml)
        assert message.timestamp == event_datetime(record.row.created)
        _assert_source(record, settings)
        sop = _check(record, seq)
        if sop is not None:
            stored_sops[record.row.id] = sop
    assert sorted(stored_sops.values()) == sorted(seq.sops)


def _run(settings: Settings, engine: Engine, arr: SyslogReceiver,
         tmp_path: Path) -> tuple[Steps, list[int], list[bytes]]:
    """The sequence at a running server; (what it did, the outbox ids written while the ARR
    was down, the messages received before it went down)."""
    value, local = mpi.new_value(), mpi.new_value("L")
    affinity_cx = mpi.cx(value, settings.affinity_domain)
    local_cx = mpi.cx(local, mpi.GREEN)
    mllp = ("127.0.0.1", settings.mllp_port)
    with running_server(build_app(settings), port=settings.port) as base:
        _poll(lambda: _delivered(arr, engine) and len(arr.messages) >= 1, 10,
              "Application Start delivered")

        # ITI-8: the patient, with a local id and the affinity-domain id (the registry learns
        # the latter from the feed).
        feed_control = "F-" + value
        ack = mpi.exchange(mllp, mpi.adt("A01", f"{local_cx}~{affinity_cx}",
                                         control_id=feed_control))
        assert mpi.field(ack, "MSA", 1) == "AA"

        # C-STORE (RAD-8): a study of that patient for the RAD-69 below.
        study = make_study(tmp_path / "study", modalities=("CT",), per_series=2,
                           patient_id=value)
        _c_store(settings, study.files)
        [(series_uid, (_, sops))] = study.series.items()

        # ITI-41 submit, ITI-18 FindDocuments.
        doc = Doc(b"end-to-end audited document\n")
        sor = submission(affinity_cx, [doc])
        assert_success(provide(base, affinity_cx, [doc], sor=sor))
        query = samples.stored_query("FindDocuments", {
            "$XDSDocumentEntryPatientId": samples.quoted(affinity_cx),
            "$XDSDocumentEntryStatus": samples.quoted_list([samples.APPROVED])})
        _, body = soapclient.post(base + "/xds/registry", soapclient.ITI18, query)
        assert soapclient.status(body) == soapclient.SUCCESS
        assert [ei.get("value") for ei in body.iter(_R + "ExternalIdentifier")
                if ei.get("identificationScheme") ==
                "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"] == [doc.unique_id]

        tag, control = "T-" + value, "Q-" + value
        qpd = next(s for s in mpi.qbp(local_cx, f"^^^&{settings.affinity_domain}&ISO",
                                      control_id=control, tag=tag).split("\r")
                   if s.startswith("QPD"))
        seq = Steps(settings, affinity_cx, local_cx, feed_control, doc, _ss_unique_id(sor),
                       study.study_uid, series_uid, sops, query, qpd, tag, control)

        # Everything so far reached the ARR; then it goes down.
        _poll(lambda: _delivered(arr, engine), 20, "records before the outage delivered")
        before_outage = list(dict.fromkeys(m.msg for m in arr.messages))
        last_before = max(r.id for r in _outbox(engine))
        arr.stop()

        # ITI-43 while it is down: it answers normally and promptly, and its record fails to go.
        assert _seconds(lambda: _retrieve(base, seq)) < PROMPT
        [first] = [r for r in _outbox(engine) if r.id > last_before]
        _poll(lambda: _row(engine, first.id).attempts >= 1, 10,
              "the sender tried to deliver the ITI-43 record")
        assert _row(engine, first.id).sent is None
        # RAD-69 and ITI-9 while the sender backs off: as prompt.
        assert _seconds(lambda: _rad69(base, seq)) < PROMPT
        assert _seconds(lambda: _pix_query(mllp, seq)) < PROMPT
        outage = [r for r in _outbox(engine) if r.id > last_before]
        assert Counter((r.event_id, r.event_type) for r in outage) == DURING_OUTAGE
        assert [r.sent for r in outage] == [None] * len(outage)
        assert outage[0].attempts >= 1

        # Back up on the same port: the backlog arrives.
        arr.start()
        _poll(lambda: _delivered(arr, engine), CATCH_UP, "the backlog delivered after restart")
    return seq, [r.id for r in outage], before_outage
