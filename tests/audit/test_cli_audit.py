"""The transactions the command-line clients initiate, audited: each command run with
``--audit-url`` against the real server sends its audit message to a real syslog receiver
(``submit`` ITI-41 Export, ``query`` ITI-18 Query, ``retrieve`` ITI-43 Import, ``pix feed`` ITI-8
Patient Record, ``pix query`` ITI-9 Query, ``imaging fetch`` ITI-18 + ITI-43 + RAD-69 Instances
Accessed, ``publish`` RAD-68 Export); failures are audited as failures; without ``--audit-url``
no database is created; an unreachable repository leaves the record in the outbox for the next
command. The client's store is a SQLite data directory of its own, so the receiver sees only
the client's messages (the server runs without an ARR)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, select
from typer.testing import CliRunner, Result

from tests.audit.receiver import Received, SyslogReceiver
from tests.audit.transactions_support import ParsedAudit
from tests.cli.test_pix_cli import _a04, _value, mllp  # noqa: F401  (the MLLP listener fixture)
from tests.imaging.dicomgen import make_study
from tests.server import free_port
from tests.security.xua_support import new_idp
from xds.cli import app
from xds.config import Settings
from xds.mpi.model import PatientIdentifier
from xds.security.saml import requestor_of
from xds.security.wsse import read_assertion
from xds.soap.ns import WSA_ANONYMOUS
from xds.store.tables import audit_outbox

#: For the tests on the server: the client side does not depend on its database, one backend
#: is enough.
one_backend = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

runner = CliRunner()
SOURCE, DESTINATION = "110153", "110152"


class Message(ParsedAudit):
    """One received AuditMessage, parsed."""

    def __init__(self, received: Received) -> None:
        self.root = received.xml
        ident = self.root.find("EventIdentification")
        assert ident is not None
        self.ident = ident

    def code(self, tag: str) -> str | None:
        el = self.ident.find(tag)
        return el.get("csd-code") if el is not None else None

    @property
    def event(self) -> tuple[str | None, str | None, str | None, str | None]:
        """(EventID, EventActionCode, EventOutcomeIndicator, EventTypeCode)."""
        return (self.code("EventID"), self.ident.get("EventActionCode"),
                self.ident.get("EventOutcomeIndicator"), self.code("EventTypeCode"))

    def object_ids(self, type_code: str, role: str) -> list[str | None]:
        return [o.get("ParticipantObjectID") for o in self.objects(type_code, role)]

    @property
    def patients(self) -> list[str | None]:
        return self.object_ids("1", "1")

    def query(self) -> bytes:
        [obj] = self.objects("2", "24")
        return base64.b64decode(obj.findtext("ParticipantObjectQuery") or "")


def _details(obj: etree._Element) -> dict[str, str]:
    return {d.get("type") or "": base64.b64decode(d.get("value") or "").decode()
            for d in obj.iterfind("ParticipantObjectDetail")}


@pytest.fixture
def arr() -> Iterator[SyslogReceiver]:
    """A real Audit Record Repository: syslog over TCP on a free loopback port."""
    with SyslogReceiver("tcp") as receiver:
        yield receiver


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The client's data directory (not created yet)."""
    return tmp_path / "client-data"


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


def _audit(arr: SyslogReceiver, store: Path) -> list[str]:
    return ["--audit-url", arr.url, "--data-dir", str(store)]


def _messages(arr: SyslogReceiver, count: int) -> list[Message]:
    return [Message(m) for m in arr.wait_for(count)]


def _assert_client(message: Message, url: str, *, we_are: str = SOURCE,
                   our_id: str = WSA_ANONYMOUS) -> None:
    """This node the requestor (``our_id``, our process id), the server ``url`` the other."""
    other = DESTINATION if we_are == SOURCE else SOURCE
    us, them = message.participant(we_are), message.participant(other)
    assert (us.get("UserID"), us.get("UserIsRequestor")) == (our_id, "true")
    assert us.get("AlternativeUserID", "").isdigit()
    assert them.get("UserIsRequestor") == "false"
    assert them.get("NetworkAccessPointID") == "127.0.0.1"
    if url:
        assert them.get("UserID") == url


def _submit(server: str, patient: str, folder: Path, *options: str) -> Result:
    document = folder / "report.txt"
    document.write_text("a report")
    return _run("submit", str(document), "--patient", patient,
                "--url", server + "/xds/repository", *options)


# -- ITI-41, ITI-18, ITI-43 ---------------------------------------------------------------------


@one_backend
def test_submit_audits_the_export_and_query_the_query(
        server: str, new_patient: Callable[..., str], arr: SyslogReceiver, store: Path,
        tmp_path: Path) -> None:
    pid = new_patient()
    submitted = _submit(server, pid, tmp_path, *_audit(arr, store))
    assert submitted.exit_code == 0, submitted.output
    set_uid = re.findall(r"^submissionSet uniqueId: (\S+)", submitted.stdout, re.M)[0]

    [export] = _messages(arr, 1)
    assert export.event == ("110106", "R", "0", "ITI-41")
    _assert_client(export, server + "/xds/repository")
    assert export.patients == [pid]
    assert export.object_ids("2", "20") == [set_uid]

    queried = _run("query", "find-documents", pid, "--url", server + "/xds/registry",
                   *_audit(arr, store))
    assert queried.exit_code == 0, queried.output
    query = _messages(arr, 2)[1]
    assert query.event == ("110112", "E", "0", "ITI-18")
    _assert_client(query, server + "/xds/registry")
    assert query.patients == [pid]
    [obj] = query.objects("2", "24")
    assert obj.get("ParticipantObjectID") == "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    adhoc = etree.fromstring(query.query())
    assert etree.QName(adhoc).localname == "AdhocQuery"
    assert f"'{pid}'" in [v.text for v in adhoc.iter("{*}Value")]


@one_backend
def test_a_failed_query_and_a_refused_submission_are_audited_as_failures(
        server: str, arr: SyslogReceiver, store: Path, tmp_path: Path) -> None:
    # FindDocuments without its required patient id: the registry answers Failure.
    failed = _run("query", "run", "FindDocuments", "-p",
                  "$XDSDocumentEntryStatus=('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
                  "--url", server + "/xds/registry", *_audit(arr, store))
    assert failed.exit_code == 1, failed.output
    [query] = _messages(arr, 1)
    assert query.event == ("110112", "E", "8", "ITI-18")
    assert (query.ident.findtext("EventOutcomeDescription") or "").startswith(
        "XDSStoredQueryMissingParam")

    unknown = f"{_value()}^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"  # never registered
    refused = _submit(server, unknown, tmp_path, *_audit(arr, store))
    assert refused.exit_code == 1, refused.output
    export = _messages(arr, 2)[1]
    assert export.event == ("110106", "R", "8", "ITI-41")
    assert "XDSUnknownPatientId" in (export.ident.findtext("EventOutcomeDescription") or "")
    assert export.patients == [unknown]


@one_backend
def test_retrieve_audits_the_import_and_an_unknown_document_as_a_failure(
        server: str, new_patient: Callable[..., str], arr: SyslogReceiver, store: Path,
        tmp_path: Path, settings: Settings) -> None:
    pid = new_patient()
    submitted = _submit(server, pid, tmp_path)
    doc_uid = re.findall(r"^document uniqueId: (\S+)", submitted.stdout, re.M)[0]
    repository = server + "/xds/repository"

    got = _run("retrieve", "--document", doc_uid, "--out", str(tmp_path / "out/"),
               "--repository", settings.repository_unique_id, "--url", repository,
               *_audit(arr, store))
    assert got.exit_code == 0, got.output
    [imported] = _messages(arr, 1)
    assert imported.event == ("110107", "C", "0", "ITI-43")
    # IPF's retrieve convention: the repository is the source, the consumer the destination.
    _assert_client(imported, repository, we_are=DESTINATION)
    [document] = imported.objects("2", "3")
    assert document.get("ParticipantObjectID") == doc_uid
    assert _details(document)["Repository Unique Id"] == settings.repository_unique_id

    missing = _run("retrieve", "--document", "2.25.1", "--out", str(tmp_path / "none/"),
                   "--repository", settings.repository_unique_id, "--url", repository,
                   *_audit(arr, store))
    assert missing.exit_code == 1, missing.output
    failed = _messages(arr, 2)[1]
    assert failed.event == ("110107", "C", "8", "ITI-43")
    assert failed.object_ids("2", "3") == ["2.25.1"]


def test_an_unreachable_repository_is_audited_as_a_major_failure(
        arr: SyslogReceiver, store: Path, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/xds/repository"
    result = _run("retrieve", "--document", "2.25.7", "--out", str(tmp_path / "out/"),
                  "--repository", "1.2.3", "--url", nowhere, *_audit(arr, store))
    assert result.exit_code == 1
    [failed] = _messages(arr, 1)
    assert failed.event == ("110107", "C", "12", "ITI-43")
    assert failed.participant(SOURCE).get("UserID") == nowhere
    assert "ConnectError" in (failed.ident.findtext("EventOutcomeDescription") or "")


@one_backend
def test_with_saml_the_assertion_s_user_is_the_human_requestor(
        server: str, new_patient: Callable[..., str], arr: SyslogReceiver, store: Path,
        tmp_path: Path) -> None:
    assertion = new_idp(tmp_path / "idp").assertion()
    saml = tmp_path / "assertion.xml"
    saml.write_bytes(assertion)
    pid = new_patient()
    result = _run("query", "find-documents", pid, "--url", server + "/xds/registry",
                  "--saml", str(saml), *_audit(arr, store))
    assert result.exit_code == 0, result.output
    [query] = _messages(arr, 1)
    expected = requestor_of(read_assertion(assertion)).user_id
    assert expected.endswith(">") and "alice" in expected
    humans = [p for p in query.root.iterfind("ActiveParticipant") if p.get("UserID") == expected]
    assert len(humans) == 1
    assert (humans[0].get("UserIsRequestor"), humans[0].get("UserName")) == (
        "true", "Alice Smith (Clinic; urn:oid:1.2.3.4)")
    assert humans[0].find("RoleIDCode").get("csd-code") == "46255001"  # type: ignore[union-attr]
    assert query.code("PurposeOfUse") == "TREATMENT"
    _assert_client(query, server + "/xds/registry")


# -- ITI-8, ITI-9 -------------------------------------------------------------------------------


@one_backend
def test_pix_feed_and_query_are_audited(
        tmp_path: Path, settings: Settings, mllp: int,  # noqa: F811
        arr: SyslogReceiver, store: Path) -> None:
    pid = PatientIdentifier(settings.affinity_domain, _value())
    feed = tmp_path / "feed.hl7"
    feed.write_text(_a04("F1", pid))
    fed = _run("pix", "feed", str(feed), "--port", str(mllp), *_audit(arr, store))
    assert fed.exit_code == 0, fed.output
    [record] = _messages(arr, 1)
    assert record.event == ("110110", "C", "0", "ITI-8")
    _assert_client(record, "", our_id="HOSP|ADT")
    assert record.participant(DESTINATION).get("UserID") == "AFFDOM|XDS"
    [patient] = record.objects("1", "1")
    assert patient.get("ParticipantObjectID") == pid.cx
    assert _details(patient)["MSH-10"] == "F1"

    asked = _run("pix", "query", pid.cx, "--port", str(mllp), *_audit(arr, store))
    assert asked.exit_code == 0, asked.output
    query = _messages(arr, 2)[1]
    assert query.event == ("110112", "E", "0", "ITI-9")
    _assert_client(query, "", our_id="XDS|XDS_CLI")
    assert query.participant(DESTINATION).get("NetworkAccessPointID") == "127.0.0.1"
    assert query.patients == [pid.cx]
    assert query.query().startswith(b"QPD|IHE PIX Query|")

    unknown = PatientIdentifier(settings.affinity_domain, _value())
    missing = _run("pix", "query", unknown.cx, "--port", str(mllp), *_audit(arr, store))
    assert missing.exit_code == 1, missing.output
    failed = _messages(arr, 3)[2]
    assert failed.event == ("110112", "E", "8", "ITI-9")
    assert failed.patients == [unknown.cx]


def test_pix_feed_without_a_listener_audits_each_message_as_a_major_failure(
        tmp_path: Path, arr: SyslogReceiver, store: Path) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_text(_a04("N1", PatientIdentifier("1.2.3", "A")) + "\n" +
                    _a04("N2", PatientIdentifier("1.2.3", "B")))
    result = _run("pix", "feed", str(feed), "--port", str(free_port()), *_audit(arr, store))
    assert result.exit_code == 1
    messages = _messages(arr, 2)
    assert [m.event for m in messages] == [("110110", "C", "12", "ITI-8")] * 2
    assert [m.patients for m in messages] == [["A^^^&1.2.3&ISO"], ["B^^^&1.2.3&ISO"]]


# -- RAD-68 (xds publish), ITI-18 + ITI-43 + RAD-69 (xds imaging fetch) -------------------------


@one_backend
def test_publish_and_imaging_fetch_are_audited(
        server: str, settings: Settings, new_patient: Callable[..., str],
        arr: SyslogReceiver, store: Path, tmp_path: Path) -> None:
    study = make_study(tmp_path / "study", modalities=("MR",), per_series=2)
    patient = new_patient(f"{study.patient_id}^^^&{settings.affinity_domain}&ISO")
    # The study is published from the server's own store (its Imaging Document Source).
    server_env = {"XDS_DATA_DIR": str(settings.data_dir),
                  "XDS_DATABASE_URL": settings.database_url, "XDS_PORT": str(settings.port)}
    assert _run("import-dicom", str(tmp_path / "study"), env=server_env).exit_code == 0
    assert _run("publish", "--study", study.study_uid, env=server_env).exit_code == 0

    fetched = _run("imaging", "fetch", "--patient", patient, "--study", study.study_uid,
                   "--out", str(tmp_path / "out"), *_audit(arr, store),
                   env={"XDS_PORT": str(settings.port)})
    assert fetched.exit_code == 0, fetched.output
    query, kos, images = _messages(arr, 3)
    assert query.event == ("110112", "E", "0", "ITI-18")
    assert query.patients == [patient]
    assert etree.fromstring(query.query()).get("id") == \
        "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"  # FindDocumentsByReferenceId
    assert kos.event == ("110107", "C", "0", "ITI-43")
    _assert_client(kos, server + "/xds/repository", we_are=DESTINATION)
    assert images.event == ("110103", "C", "0", "RAD-69")
    _assert_client(images, server + "/xds/imaging", we_are=DESTINATION)
    assert images.patients == [patient]
    studies = images.objects("2", "3")
    assert {o.get("ParticipantObjectID") for o in studies} == {study.study_uid}
    assert {_details(o)["ihe:DocumentUniqueId"] for o in studies} == \
        {f.stem for f in (tmp_path / "out").rglob("*.dcm")}
    assert len(studies) == 2

    # Only the study known: ITI-51 across patients, then the same ITI-43 and RAD-69.
    by_study = _run("imaging", "fetch", "--study", study.study_uid, "--out",
                    str(tmp_path / "by-study"), *_audit(arr, store),
                    env={"XDS_PORT": str(settings.port)})
    assert by_study.exit_code == 0, by_study.output
    multi, kos, images = _messages(arr, 6)[3:]
    assert multi.event == ("110112", "E", "0", "ITI-51")
    assert multi.patients == []  # ITI-51 names no single patient
    assert etree.fromstring(multi.query()).get("id") == \
        "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f"  # FindDocumentsForMultiplePatients
    assert (kos.event, images.event) == (("110107", "C", "0", "ITI-43"),
                                         ("110103", "C", "0", "RAD-69"))

    # RAD-68 from the command line: recorded in the store's outbox and sent at the end.
    again = make_study(tmp_path / "again", modalities=("CT",), per_series=1)
    new_patient(f"{again.patient_id}^^^&{settings.affinity_domain}&ISO")
    source = {"XDS_DATA_DIR": str(tmp_path / "source"), "XDS_PORT": str(settings.port)}
    assert _run("import-dicom", str(tmp_path / "again"), env=source).exit_code == 0
    published = _run("publish", "--study", again.study_uid, "--repository-url",
                     server + "/xds/repository", "--audit-url", arr.url, env=source)
    assert published.exit_code == 0, published.output
    sent = _wait_for_event(arr, "RAD-68")
    assert sent.event == ("110106", "R", "0", "RAD-68")
    assert sent.participant(DESTINATION).get("UserID") == server + "/xds/repository"


def _wait_for_event(arr: SyslogReceiver, code: str) -> Message:
    """The first received message of EventTypeCode ``code``."""
    for count in range(1, 200):
        found = [m for m in map(Message, arr.wait_for(count)) if m.code("EventTypeCode") == code]
        if found:
            return found[0]
    raise AssertionError(f"no {code} message")


# -- no ARR configured, ARR down ----------------------------------------------------------------


@one_backend
def test_without_audit_url_nothing_is_recorded_and_no_database_created(
        server: str, new_patient: Callable[..., str], store: Path, tmp_path: Path) -> None:
    pid = new_patient()
    assert _submit(server, pid, tmp_path, "--data-dir", str(store)).exit_code == 0
    queried = _run("query", "find-documents", pid, "--url", server + "/xds/registry",
                   "--data-dir", str(store))
    assert queried.exit_code == 0, queried.output
    assert not store.exists()

    typo = _run("query", "find-documents", pid, "--url", server + "/xds/registry",
                "--audit-url", "https://arr.example.org", "--data-dir", str(store))
    assert typo.exit_code == 2 and "--audit-url" in typo.output
    assert not store.exists()


@one_backend
def test_an_unreachable_arr_keeps_the_record_for_the_next_command(
        server: str, new_patient: Callable[..., str], store: Path) -> None:
    down = SyslogReceiver("tcp", port=free_port())
    url = down.url
    pid = new_patient()
    first = _run("query", "find-documents", pid, "--url", server + "/xds/registry",
                 "--audit-url", url, "--data-dir", str(store))
    assert first.exit_code == 0, first.output
    assert _outbox(store) == [("ITI-18", False)]

    with down:
        second = _run("query", "find-submission-sets", pid, "--url", server + "/xds/registry",
                      "--audit-url", url, "--data-dir", str(store))
        assert second.exit_code == 0, second.output
        messages = _messages(down, 2)
    assert [m.event for m in messages] == [("110112", "E", "0", "ITI-18")] * 2
    ids = [etree.fromstring(m.query()).get("id") for m in messages]
    assert ids == ["urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",   # FindDocuments, kept
                   "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"]   # FindSubmissionSets
    assert _outbox(store) == [("ITI-18", True), ("ITI-18", True)]


def _outbox(store: Path) -> list[tuple[str, bool]]:
    """(EventTypeCode, sent) of each row of the client's outbox."""
    engine = create_engine(f"sqlite:///{store / 'registry.sqlite'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(audit_outbox.c.event_type, audit_outbox.c.sent)
                                .order_by(audit_outbox.c.id)).all()
    finally:
        engine.dispose()
    return [(r.event_type, r.sent is not None) for r in rows]
