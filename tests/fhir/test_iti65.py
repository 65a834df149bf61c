"""ITI-65 Provide Document Bundle over real HTTP: a published Bundle is found by ITI-18 and
ITI-67 and its bytes retrieved by ITI-43 and ITI-68; replacements deprecate; every refused
Bundle answers an OperationOutcome with its status and IHE code and leaves nothing stored (no
registry row, no repository row, no blob and no spool file)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests import samples
from tests.fhir.support import FHIR_JSON, check_outcome, entries, get, r4b
from tests.registry.iti18_support import R, query
from tests.registry.iti42_support import registered_document
from tests.repository.support import (
    assert_nothing_left, blob_files, document_responses, repository_rows, retrieve,
)
from tests.server import free_port, running_server
from xds.config import Settings
from xds.fhir.ids import patient_resource_id
from xds.mpi.model import PatientIdentifier

NewPatient = Callable[..., str]
Json = dict[str, Any]
LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
SOURCE_ID = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"
DESIGNATION = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType"
PROFILE = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _concept(code: samples.Code) -> Json:
    return {"coding": [{"system": f"urn:oid:{code.scheme}", "code": code.code,
                        "display": code.display}]}


def _subject(pid: str) -> Json:
    value, _, rest = pid.partition("^^^&")
    resource_id = patient_resource_id(PatientIdentifier(rest.split("&")[0], value))
    assert resource_id
    return {"reference": f"Patient/{resource_id}"}


@dataclass
class Doc:
    """One document of a test Bundle and what its DocumentReference says about it."""

    content: bytes
    mime_type: str = "text/plain"
    unique_id: str = field(default_factory=samples.new_oid)
    full_url: str = field(default_factory=_urn)
    binary_url: str = field(default_factory=_urn)
    hash: str | None = None  # base64 SHA-1; None: the right one
    size: int | None = None  # None: the right one
    inline: bool = False
    replaces: str | None = None  # entryUUID of the replaced DocumentEntry

    @property
    def entry_uuid(self) -> str:
        return self.full_url

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.content).hexdigest()


def document_reference(pid: str, doc: Doc) -> Json:
    """A comprehensive DocumentReference of ``doc`` for patient ``pid``."""
    attachment: Json = {
        "contentType": doc.mime_type, "language": "en-US", "title": "Report",
        "creation": "2024-01-02T03:04:05+01:00",
        "hash": doc.hash or _b64(hashlib.sha1(doc.content).digest()),
        "size": doc.size if doc.size is not None else len(doc.content)}
    if doc.inline:
        attachment["data"] = _b64(doc.content)
    else:
        attachment["url"] = doc.binary_url
    resource: Json = {
        "resourceType": "DocumentReference",
        "contained": [
            {"resourceType": "Patient", "id": "src",
             "identifier": [{"system": "urn:oid:1.3.6.1.4.1.21367.13.20.3000",
                             "value": "SRC-" + uuid.uuid4().hex[:8]}],
             "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female",
             "birthDate": "1970-01-01"},
            {"resourceType": "Practitioner", "id": "author",
             "name": [{"family": "Welby", "given": ["Marcus"], "prefix": ["Dr"]}],
             "telecom": [{"system": "email", "value": "marcus.welby@example.org"}]},
            {"resourceType": "Organization", "id": "org", "name": "Some Hospital",
             "identifier": [{"system": "urn:ietf:rfc:3986",
                             "value": "urn:oid:1.2.3.9.1789.45"}]},
        ],
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{doc.unique_id}"},
        "status": "current",
        "type": _concept(samples.TYPE_CODE),
        "category": [_concept(samples.CLASS_CODE)],
        "subject": _subject(pid),
        "author": [{"reference": "#author"}, {"reference": "#org"}],
        "description": "a test document",
        "securityLabel": [_concept(samples.CONFIDENTIALITY_CODE)],
        "content": [{"attachment": attachment, "format": {
            "system": f"urn:oid:{samples.FORMAT_CODE.scheme}", "code": samples.FORMAT_CODE.code,
            "display": samples.FORMAT_CODE.display}}],
        "context": {
            "event": [_concept(samples.EVENT_CODE)],
            "period": {"start": "2024-01-01T10:00:00Z", "end": "2024-01-01T11:00:00Z"},
            "facilityType": _concept(samples.HEALTHCARE_FACILITY_TYPE_CODE),
            "practiceSetting": _concept(samples.PRACTICE_SETTING_CODE),
            "sourcePatientInfo": {"reference": "#src"}},
    }
    if doc.replaces:
        resource["relatesTo"] = [{"code": "replaces", "target": {
            "reference": f"DocumentReference/{doc.replaces.removeprefix('urn:uuid:')}"}}]
    return resource


def _entry(full_url: str, resource: Json) -> Json:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}


def _list(pid: str, code: str, items: list[str], unique_id: str) -> Json:
    return {"resourceType": "List", "status": "current", "mode": "working",
            "identifier": [{"use": "usual", "system": "urn:ietf:rfc:3986",
                            "value": f"urn:oid:{unique_id}"}],
            "code": {"coding": [{"system": LIST_TYPES, "code": code}]},
            "subject": _subject(pid), "date": "2024-01-02T03:04:05Z",
            "entry": [{"item": {"reference": i}} for i in items]}


@dataclass
class Published:
    """A test Bundle and the ids it uses."""

    bundle: Json
    ss_url: str
    folder_url: str | None
    ss_unique_id: str


def provide_bundle(pid: str, docs: list[Doc], *, folder: bool = False,
                   ss_unique_id: str | None = None) -> Published:
    """A Provide Document Bundle: SubmissionSet, optional folder of every document, the
    DocumentReferences and their Binaries."""
    ss_url, ss_uid = _urn(), ss_unique_id or samples.new_oid()
    ss = _list(pid, "submissionset", [d.full_url for d in docs], ss_uid)
    ss["extension"] = [
        {"url": SOURCE_ID, "valueIdentifier": {"value": f"urn:oid:{samples.SOURCE_ID}"}},
        {"url": DESIGNATION, "valueCodeableConcept": _concept(samples.CONTENT_TYPE_CODE)}]
    ss["source"] = {"display": "Dr Marcus Welby"}
    out = [_entry(ss_url, ss)]
    folder_url = None
    if folder:
        folder_url = _urn()
        fd = _list(pid, "folder", [d.full_url for d in docs], samples.new_oid())
        fd["extension"] = [{"url": DESIGNATION,
                            "valueCodeableConcept": _concept(samples.FOLDER_CODE)}]
        fd["title"] = "A folder"
        out.append(_entry(folder_url, fd))
    for doc in docs:
        out.append(_entry(doc.full_url, document_reference(pid, doc)))
        if not doc.inline:
            out.append(_entry(doc.binary_url, {"resourceType": "Binary",
                                               "contentType": doc.mime_type,
                                               "data": _b64(doc.content)}))
    bundle = {"resourceType": "Bundle", "meta": {"profile": [PROFILE]}, "type": "transaction",
              "entry": out}
    return Published(bundle, ss_url, folder_url, ss_uid)


def post(server: str, body: Json | bytes, content_type: str = FHIR_JSON) -> httpx.Response:
    """POST ``body`` to the FHIR base (ITI-65)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server + "/fhir", content=data, timeout=60,
                      headers={"Content-Type": content_type, "Accept": FHIR_JSON})


def _unique_id(answer: Any, entry_id: str) -> str:
    el = answer.elements[entry_id]
    return str(next(e.get("value") for e in el.iter(R + "ExternalIdentifier")
                    if e.get("identificationScheme") == samples.DE.uniqueId))


def find_documents(registry_url: str, pid: str, status: str = samples.APPROVED) -> Any:
    """ITI-18 FindDocuments of ``pid`` with ``status``."""
    return query(registry_url, "FindDocuments", {
        "$XDSDocumentEntryPatientId": samples.quoted(pid),
        "$XDSDocumentEntryStatus": samples.quoted_list([status])})


def _author_slots(el: Any) -> dict[str, list[str]]:
    (author,) = [c for c in el.iterchildren(R + "Classification")
                 if c.get("classificationScheme") == samples.DE.author]
    return {s.get("name"): [v.text for v in s.iter(R + "Value")]
            for s in author.iterchildren(R + "Slot")}


def _ihe_codes(outcome: Json) -> set[str]:
    return {c["code"] for i in outcome["issue"] for c in i.get("details", {}).get("coding", [])}


def _pdf() -> bytes:
    return b"%PDF-1.4\n" + os.urandom(30_000) + b"\n%%EOF\n"


# -- success --------------------------------------------------------------------------------------


def test_publish_two_documents_and_a_folder_then_find_and_retrieve_them(
        server: str, registry_url: str, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(_pdf(), "application/pdf"), Doc(b"plain text\n" * 100)]
    published = provide_bundle(pid, docs, folder=True)
    response = post(server, published.bundle)
    assert response.status_code == 200, response.text
    answer = response.json()
    r4b(answer)
    assert answer["type"] == "transaction-response"
    assert published.folder_url
    ids = [e.removeprefix("urn:uuid:") for e in (published.ss_url, published.folder_url)]
    expected = [f"List/{ids[0]}", f"List/{ids[1]}"]
    for doc in docs:
        expected += [f"DocumentReference/{doc.entry_uuid[9:]}", f"Binary/{doc.entry_uuid[9:]}"]
    assert [e["response"]["location"] for e in answer["entry"]] == expected
    assert {e["response"]["status"] for e in answer["entry"]} == {"201 Created"}

    # ITI-18: the same entryUUIDs and uniqueIds, hash (hex) and size of the bytes.
    found = find_documents(registry_url, pid)
    assert found.document_entries == {d.entry_uuid for d in docs}
    for doc in docs:
        assert _unique_id(found, doc.entry_uuid) == doc.unique_id
        assert found.slot(doc.entry_uuid, "hash") == [doc.sha1]
        assert found.slot(doc.entry_uuid, "size") == [str(len(doc.content))]
        assert found.slot(doc.entry_uuid, "creationTime") == ["20240102020405"]
        assert found.slot(doc.entry_uuid, "repositoryUniqueId") == [settings.repository_unique_id]
        assert found.elements[doc.entry_uuid].get("mimeType") == doc.mime_type
        assert _author_slots(found.elements[doc.entry_uuid]) == {
            "authorPerson": ["^Welby^Marcus^^^Dr"],
            "authorInstitution": ["Some Hospital^^^^^^^^^1.2.3.9.1789.45"],
            "authorTelecommunication": ["^^Internet^marcus.welby@example.org"]}
    folders = query(registry_url, "GetFolderAndContents",
                    {"$XDSFolderEntryUUID": samples.quoted(published.folder_url or "")})
    assert folders.folders == {published.folder_url}
    assert folders.document_entries == {d.entry_uuid for d in docs}
    # ITI-43: the bytes.
    reply = retrieve(server, [(settings.repository_unique_id, d.unique_id) for d in docs])
    assert {r.document_unique_id: r.content for r in document_responses(reply)} == {
        d.unique_id: d.content for d in docs}
    assert not any(settings.spool_dir.iterdir())


def test_published_documents_are_found_by_iti67_and_retrieved_by_iti68(
        server: str, new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(_pdf(), "application/pdf"), Doc(b"inline text\n", inline=True)]
    response = post(server, provide_bundle(pid, docs).bundle)
    assert response.status_code == 200, response.text
    subject = _subject(pid)["reference"]
    bundle = get(f"{server}/fhir/DocumentReference",
                 {"patient": subject, "status": "current"}).json()
    found = {d["id"]: d for d in entries(bundle)}
    assert set(found) == {d.entry_uuid[9:] for d in docs}
    for doc in docs:
        reference = found[doc.entry_uuid[9:]]
        assert reference["masterIdentifier"]["value"] == f"urn:oid:{doc.unique_id}"
        attachment = reference["content"][0]["attachment"]
        assert attachment["hash"] == _b64(hashlib.sha1(doc.content).digest())
        url = attachment["url"]
        url = url if url.startswith("http") else f"{server}/fhir/{url}"
        retrieved = httpx.get(url, timeout=60)
        assert retrieved.status_code == 200
        assert retrieved.content == doc.content
        assert retrieved.headers["content-type"].startswith(doc.mime_type)


def test_relates_to_replaces_deprecates_the_old_entry(
        server: str, registry_url: str, new_patient: NewPatient) -> None:
    pid = new_patient()
    old = Doc(b"version 1\n")
    assert post(server, provide_bundle(pid, [old]).bundle).status_code == 200
    new = Doc(b"version 2\n", replaces=old.entry_uuid)
    response = post(server, provide_bundle(pid, [new]).bundle)
    assert response.status_code == 200, response.text
    assert find_documents(registry_url, pid).document_entries == {new.entry_uuid}
    assert find_documents(registry_url, pid, samples.DEPRECATED).document_entries == {
        old.entry_uuid}


def test_subject_by_identifier_and_inline_data(
        server: str, registry_url: str, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(b"inline document\n", inline=True)
    published = provide_bundle(pid, [doc])
    value = pid.split("^")[0]
    for entry in published.bundle["entry"]:
        entry["resource"]["subject"] = {"identifier": {
            "system": f"urn:oid:{settings.affinity_domain}", "value": value}}
    response = post(server, published.bundle)
    assert response.status_code == 200, response.text
    assert [e["response"]["location"] for e in response.json()["entry"]] == [
        f"List/{published.ss_url[9:]}", f"DocumentReference/{doc.entry_uuid[9:]}"]
    found = find_documents(registry_url, pid)
    assert found.document_entries == {doc.entry_uuid}
    assert found.slot(doc.entry_uuid, "hash") == [doc.sha1]


# -- refused bundles: status, code and nothing stored ---------------------------------------------


@pytest.fixture
def refused(server: str, engine: Engine, settings: Settings) -> Callable[..., Json]:
    """Post a Bundle that must be refused; checks status, IssueType, IHE code and that
    nothing of ``pid`` / ``unique_ids`` was stored and no file was left behind."""

    def check(pid: str, body: Json | bytes, status: int, code: str, ihe_code: str | None = None,
              *, unique_ids: list[str] | None = None, content_type: str = FHIR_JSON) -> Json:
        before = blob_files(settings)
        outcome = check_outcome(post(server, body, content_type), status, code)
        if ihe_code is not None:
            assert ihe_code in _ihe_codes(outcome), outcome
        assert_nothing_left(engine, settings, pid, unique_ids or [], before)
        return outcome

    return check


def _uids(docs: list[Doc]) -> list[str]:
    return [d.unique_id for d in docs]


def test_malformed_json_is_400(refused: Callable[..., Json], new_patient: NewPatient) -> None:
    refused(new_patient(), b'{"resourceType": "Bundle", "type": ', 400, "structure")


def test_a_resource_r4_refuses_is_422(refused: Callable[..., Json],
                                      new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"x")]
    published = provide_bundle(pid, docs)
    attachment = published.bundle["entry"][1]["resource"]["content"][0]["attachment"]
    attachment["creation"] = "yesterday"
    outcome = refused(pid, published.bundle, 422, "invalid", unique_ids=_uids(docs))
    assert "attachment.creation" in outcome["issue"][0]["expression"][0]


@pytest.mark.parametrize("kind", ["batch", "collection"])
def test_a_bundle_that_is_no_transaction_is_400(
        refused: Callable[..., Json], new_patient: NewPatient, kind: str) -> None:
    pid = new_patient()
    docs = [Doc(b"x")]
    published = provide_bundle(pid, docs)
    published.bundle["type"] = kind
    if kind == "collection":
        for entry in published.bundle["entry"]:
            del entry["request"]
    refused(pid, published.bundle, 400, "invalid", unique_ids=_uids(docs))


def test_no_submission_set_list_is_400(refused: Callable[..., Json],
                                       new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"x")]
    published = provide_bundle(pid, docs)
    published.bundle["entry"] = published.bundle["entry"][1:]
    refused(pid, published.bundle, 400, "invalid", unique_ids=_uids(docs))


def test_document_reference_without_content_is_refused(
        refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"x")]
    published = provide_bundle(pid, docs)
    del published.bundle["entry"][1]["resource"]["content"]
    refused(pid, published.bundle, 422, "invalid", unique_ids=_uids(docs))  # content is 1..*


def test_document_reference_without_its_binary_is_400(
        refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"x")]
    published = provide_bundle(pid, docs)
    published.bundle["entry"] = published.bundle["entry"][:2]  # the Binary left out
    refused(pid, published.bundle, 400, "invalid", "XDSMissingDocument", unique_ids=_uids(docs))


def test_binary_data_that_is_no_base64_is_422(
        refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"x")]
    published = provide_bundle(pid, docs)
    published.bundle["entry"][2]["resource"]["data"] = "not base64!"
    refused(pid, published.bundle, 422, "invalid", unique_ids=_uids(docs))  # R4 base64Binary


def test_hash_mismatch_is_422(refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(_pdf(), "application/pdf"),
            Doc(b"some text", hash=_b64(hashlib.sha1(b"other text").digest()))]
    refused(pid, provide_bundle(pid, docs).bundle, 422, "processing",
            "XDSRepositoryMetadataError", unique_ids=_uids(docs))


def test_size_mismatch_is_422(refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"some text", size=3)]
    refused(pid, provide_bundle(pid, docs).bundle, 422, "processing",
            "XDSRepositoryMetadataError", unique_ids=_uids(docs))


def test_unknown_patient_is_the_registrys_unknown_patient_id(
        refused: Callable[..., Json], settings: Settings) -> None:
    pid = samples.new_patient_id(settings.affinity_domain)  # never registered
    docs = [Doc(_pdf(), "application/pdf")]
    outcome = refused(pid, provide_bundle(pid, docs, folder=True).bundle, 422, "processing",
                      "XDSUnknownPatientId", unique_ids=_uids(docs))
    assert outcome["issue"][0]["details"]["text"] == "XDSUnknownPatientId"


def test_wrong_content_type_is_415(refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"x")]
    refused(pid, json.dumps(provide_bundle(pid, docs).bundle).encode(), 415, "not-supported",
            unique_ids=_uids(docs), content_type="application/xml")


def test_duplicate_unique_id_of_a_different_document_is_409(
        server: str, engine: Engine, settings: Settings, registry_url: str,
        refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    first = Doc(b"the original\n")
    assert post(server, provide_bundle(pid, [first]).bundle).status_code == 200
    before = find_documents(registry_url, pid).document_entries
    rows = repository_rows(engine, [first.unique_id])
    other = Doc(b"other bytes, same uniqueId\n", unique_id=first.unique_id)
    before_files = blob_files(settings)
    outcome = check_outcome(post(server, provide_bundle(pid, [other]).bundle), 409)
    assert _ihe_codes(outcome) & {"XDSNonIdenticalHash", "XDSDuplicateUniqueIdInRegistry"}
    assert find_documents(registry_url, pid).document_entries == before == {first.entry_uuid}
    assert repository_rows(engine, [first.unique_id]) == rows
    assert blob_files(settings) == before_files


def test_unique_id_registered_for_other_bytes_is_409_and_the_stored_bytes_are_removed(
        registry_url: str, engine: Engine, refused: Callable[..., Json],
        new_patient: NewPatient) -> None:
    other_patient = new_patient()
    _, unique_id = registered_document(registry_url, other_patient)  # by ITI-42, no bytes here
    pid = new_patient()
    docs = [Doc(_pdf(), "application/pdf", unique_id=unique_id)]
    # The registry holds the uniqueId with another hash: XDSNonIdenticalHash, as for ITI-41.
    refused(pid, provide_bundle(pid, docs).bundle, 409, "conflict", "XDSNonIdenticalHash")
    assert repository_rows(engine, [unique_id]) == []
    assert find_documents(registry_url, pid).document_entries == set()


def test_submission_set_unique_id_used_before_is_409_duplicate(
        server: str, refused: Callable[..., Json], new_patient: NewPatient) -> None:
    first = provide_bundle(new_patient(), [Doc(b"first")])
    assert post(server, first.bundle).status_code == 200
    pid = new_patient()
    docs = [Doc(b"second")]
    refused(pid, provide_bundle(pid, docs, ss_unique_id=first.ss_unique_id).bundle, 409,
            "duplicate", "XDSDuplicateUniqueIdInRegistry", unique_ids=_uids(docs))


def test_replacing_an_unknown_document_is_422(
        refused: Callable[..., Json], new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"replaces nothing", replaces=_urn())]
    refused(pid, provide_bundle(pid, docs).bundle, 422, "processing",
            "UnresolvedReferenceException", unique_ids=_uids(docs))


def test_a_body_over_the_cap_is_413(tmp_path: Path) -> None:
    small = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                     mllp_port=0, port=free_port(), dicom_port=free_port(),
                     max_envelope_bytes=4096)
    from xds.app import build_app

    pid = samples.new_patient_id(small.affinity_domain)
    body = json.dumps(provide_bundle(pid, [Doc(os.urandom(8192))]).bundle).encode()
    with running_server(build_app(small), port=small.port) as base:
        check_outcome(post(base, body), 413, "too-costly")
    assert not small.spool_dir.exists() or not any(small.spool_dir.iterdir())
    assert not small.blob_dir.exists() or not any(p.is_file() for p in small.blob_dir.rglob("*"))
