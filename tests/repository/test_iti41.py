"""ITI-41 Provide and Register Document Set-b at a real repository over HTTP: MTOM and inline
uploads, the hash/size/repositoryUniqueId the repository sets, its metadata errors and the
registry's, and that a failed submission leaves no row and no file (ITI TF-2 §3.41.4.1.3)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable

import pytest
from lxml import etree
from sqlalchemy import Engine

from tests import samples, soapclient, xsd
from tests.repository.support import (
    ITI41, Doc, Part, assert_failure, assert_nothing_left, assert_success, blob_files, blob_name,
    entry_row, pnr, post_mtom, provide, reconstructed, reply_of, repository_rows, sha1, stored,
    submission,
)
from tests.soap.app import base64_lines, multipart
from xds.config import Settings

NewPatient = Callable[..., str]
R = f"{{{samples.NS_RIM}}}"
PDF = b"%PDF-1.4\n" + os.urandom(20_000) + b"\n%%EOF\n"


def _assert_stored(engine: Engine, settings: Settings, doc: Doc) -> None:
    """The repository row, the blob file and the registry's DocumentEntry agree with ``doc``."""
    (row,) = repository_rows(engine, [doc.unique_id])
    assert (row.repository_unique_id, row.sha1, row.size, row.mime_type) == (
        settings.repository_unique_id, sha1(doc.content), len(doc.content), doc.mime_type)
    assert row.sha256 == hashlib.sha256(doc.content).hexdigest()
    assert stored(settings, doc.content) == doc.content
    entry = entry_row(engine, doc.unique_id)
    assert (entry.hash, entry.size, entry.repository_unique_id, entry.mime_type) == (
        sha1(doc.content), len(doc.content), settings.repository_unique_id, doc.mime_type)


def _slots(obj: etree._Element) -> dict[str, list[str]]:
    return {s.get("name") or "": [v.text or "" for v in s.iter(R + "Value")]
            for s in obj.iterchildren(R + "Slot")}


def test_mtom_single_document_is_stored_and_registered_with_hash_size_and_repository_id(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(PDF, "application/pdf")
    before = blob_files(settings)
    message_id = f"urn:uuid:{uuid.uuid4()}"
    reply = provide(server, pid, [doc], message_id=message_id)
    assert_success(reply)
    assert soapclient.header(reply.envelope, "RelatesTo") == message_id
    assert reply.parts == {}
    _assert_stored(engine, settings, doc)
    # Exactly one new file, the blob; the spool is empty again.
    assert blob_files(settings) - before == {
        blob_name(settings, doc.content)}
    assert not any(settings.spool_dir.iterdir())


def test_mtom_three_documents_of_different_mime_types_as_seen_by_iti18(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(PDF, "application/pdf"),
            Doc(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", "text/xml"),
            Doc(b"\x89PNG\r\n\x1a\n" + os.urandom(5000), "image/png")]
    assert_success(provide(server, pid, docs))
    for doc in docs:
        _assert_stored(engine, settings, doc)
    query = samples.stored_query("GetDocuments", {
        "$XDSDocumentEntryUniqueId": samples.quoted_list([d.unique_id for d in docs])})
    _, body = soapclient.post(server + "/xds/registry", soapclient.ITI18, query)
    assert soapclient.status(body) == soapclient.SUCCESS
    found = {}
    for eo in body.iter(R + "ExtrinsicObject"):
        uid = next(e.get("value") for e in eo.iter(R + "ExternalIdentifier")
                   if e.get("identificationScheme") == samples.DE.uniqueId)
        found[uid] = (eo.get("mimeType"), _slots(eo))
    for doc in docs:
        mime_type, slots = found[doc.unique_id]
        assert mime_type == doc.mime_type
        assert slots["hash"] == [sha1(doc.content)]
        assert slots["size"] == [str(len(doc.content))]
        assert slots["repositoryUniqueId"] == [settings.repository_unique_id]


def test_repository_replaces_a_submitted_foreign_repository_unique_id(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(b"some text\n")
    sor = submission(pid, [doc], repository_unique_id="1.2.3.4.5.6")
    assert_success(provide(server, pid, [doc], sor=sor))
    assert entry_row(engine, doc.unique_id).repository_unique_id == settings.repository_unique_id


def test_inline_base64_over_simple_soap_is_answered_with_mtom(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(os.urandom(3000), "application/octet-stream", inline=True),
            Doc(b"plain text, inline\n", inline=True)]
    reply = provide(server, pid, docs, mtom=False)
    assert_success(reply)  # multipart/related although the request was Simple SOAP
    for doc in docs:
        _assert_stored(engine, settings, doc)
    assert not any(settings.spool_dir.iterdir())


def test_inline_base64_inside_mtom_next_to_an_attachment(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [Doc(b"inline in the MTOM root part\n", inline=True), Doc(PDF, "application/pdf")]
    assert_success(provide(server, pid, docs))
    for doc in docs:
        _assert_stored(engine, settings, doc)


def test_unoptimised_mtom_with_only_a_root_part(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(b"unoptimised MTOM (App. V.8.2)\n", inline=True)
    assert_success(provide(server, pid, [doc]))
    _assert_stored(engine, settings, doc)


def test_hand_written_multipart_with_base64_part_and_start_without_brackets(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(bytes(range(256)) * 40, "application/octet-stream")
    envelope = soapclient.envelope(ITI41, pnr(submission(pid, [doc]), [doc]))
    body = multipart([
        ({"Content-Type": 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
          "Content-Transfer-Encoding": "binary", "Content-ID": "<0.root@tests.xds>"}, envelope),
        ({"Content-Type": doc.mime_type, "Content-Transfer-Encoding": "base64",
          "Content-ID": f"<{doc.content_id}>"}, base64_lines(doc.content)),
    ], boundary="MIMEBoundary_hand")
    content_type = ('multipart/related; boundary=MIMEBoundary_hand; type="application/xop+xml"; '
                    'start="0.root@tests.xds"; start-info="application/soap+xml"; '
                    f'action="{ITI41}"')
    xsd.assert_valid(reconstructed(soapclient.parse_envelope(envelope),
                                   {doc.content_id: Part(doc.mime_type, doc.content)}))
    reply = reply_of(soapclient.post_raw(server + "/xds/repository", body,
                                         content_type=content_type))
    assert_success(reply)
    _assert_stored(engine, settings, doc)  # hash and size over the decoded octets


def test_identical_bytes_in_two_documents_are_one_blob_and_two_rows(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    content = os.urandom(4096)
    docs = [Doc(content), Doc(content, inline=True)]
    before = blob_files(settings)
    assert_success(provide(server, pid, docs))
    rows = repository_rows(engine, [d.unique_id for d in docs])
    assert len(rows) == 2 and rows[0].sha256 == rows[1].sha256
    assert blob_files(settings) - before == {
        blob_name(settings, content)}
    # A later submission of the same bytes adds a row and no file.
    again = Doc(content)
    after_first = blob_files(settings)
    assert_success(provide(server, pid, [again]))
    assert len(repository_rows(engine, [again.unique_id])) == 1
    assert blob_files(settings) == after_first


@pytest.mark.parametrize("case", ["lower", "upper"])
def test_supplied_correct_hash_and_size_are_accepted(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient,
        case: str) -> None:
    pid = new_patient()
    content = os.urandom(1000)
    digest = sha1(content).upper() if case == "upper" else sha1(content)
    doc = Doc(content, hash=digest, size=len(content))
    assert_success(provide(server, pid, [doc]))
    _assert_stored(engine, settings, doc)


@pytest.mark.parametrize("inline", [False, True], ids=["attached", "inline"])
@pytest.mark.parametrize("wrong", ["hash", "size"])
def test_supplied_wrong_hash_or_size_is_XDSRepositoryMetadataError_and_leaves_nothing(
        server: str, engine: Engine, settings: Settings, wrong: str, inline: bool) -> None:
    pid = samples.new_patient_id(settings.affinity_domain)
    content = os.urandom(2000)
    bad = Doc(content, inline=inline, hash=sha1(b"other") if wrong == "hash" else None,
              size=len(content) + 1 if wrong == "size" else None)
    good = Doc(os.urandom(500))
    before = blob_files(settings)
    errors = assert_failure(provide(server, pid, [good, bad]), "XDSRepositoryMetadataError")
    assert bad.entry_id in (errors[0].codeContext or "")
    assert_nothing_left(engine, settings, pid, [good.unique_id, bad.unique_id], before)


def test_document_entry_without_document_is_XDSMissingDocument(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    sent, missing = Doc(os.urandom(800)), Doc(os.urandom(800))
    sor = submission(pid, [sent, missing])
    before = blob_files(settings)
    errors = assert_failure(provide(server, pid, [sent], sor=sor), "XDSMissingDocument")
    assert errors[0].location == missing.entry_id
    assert_nothing_left(engine, settings, pid, [sent.unique_id, missing.unique_id], before)


@pytest.mark.parametrize("inline", [False, True], ids=["attached", "inline"])
def test_document_without_document_entry_is_XDSMissingDocumentMetadata(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient,
        inline: bool) -> None:
    pid = new_patient()
    described, extra = Doc(os.urandom(800)), Doc(os.urandom(800), inline=inline)
    sor = submission(pid, [described])
    before = blob_files(settings)
    errors = assert_failure(provide(server, pid, [described, extra], sor=sor),
                            "XDSMissingDocumentMetadata")
    assert errors[0].location == extra.entry_id
    assert_nothing_left(engine, settings, pid, [described.unique_id], before)


def test_duplicate_unique_id_in_message_is_XDSRepositoryDuplicateUniqueIdInMessage(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    first = Doc(os.urandom(600))
    second = Doc(os.urandom(600), unique_id=first.unique_id, inline=True)
    before = blob_files(settings)
    errors = assert_failure(provide(server, pid, [first, second]),
                            "XDSRepositoryDuplicateUniqueIdInMessage")
    assert first.unique_id in (errors[0].codeContext or "")
    assert_nothing_left(engine, settings, pid, [first.unique_id], before)


def test_same_unique_id_with_other_bytes_is_XDSNonIdenticalHash_and_keeps_the_first(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    first = Doc(os.urandom(700))
    assert_success(provide(server, pid, [first]))
    before = blob_files(settings)
    rows_before = repository_rows(engine, [first.unique_id])
    other = Doc(os.urandom(700), unique_id=first.unique_id)
    assert_failure(provide(server, pid, [other]), "XDSNonIdenticalHash")
    assert repository_rows(engine, [first.unique_id]) == rows_before
    assert blob_files(settings) == before


def test_registry_rejection_is_relayed_and_only_this_submissions_blobs_are_removed(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    shared = os.urandom(3000)
    earlier = Doc(shared)
    assert_success(provide(server, new_patient(), [earlier]))
    unknown = samples.new_patient_id(settings.affinity_domain)  # never fed to the registry
    fresh, reused = Doc(os.urandom(3000), "application/pdf"), Doc(shared, inline=True)
    before = blob_files(settings)
    errors = assert_failure(provide(server, unknown, [fresh, reused]), "XDSUnknownPatientId")
    assert any(unknown in (e.codeContext or "") for e in errors), errors
    assert_nothing_left(engine, settings, unknown, [fresh.unique_id, reused.unique_id], before)
    assert stored(settings, fresh.content) is None
    # The earlier submission's document and its blob are untouched.
    assert stored(settings, shared) == shared
    assert len(repository_rows(engine, [earlier.unique_id])) == 1


def test_empty_request_is_XDSRepositoryMetadataError(server: str, settings: Settings) -> None:
    # Not schema-valid (no SubmitObjectsRequest), so the request check is skipped.
    body = etree.Element("{urn:ihe:iti:xds-b:2007}ProvideAndRegisterDocumentSetRequest")
    before = blob_files(settings)
    reply = post_mtom(server, soapclient.envelope(ITI41, body),
                      {"stray@tests.xds": Part("text/plain", b"x")}, check_request=False)
    assert_failure(reply, "XDSRepositoryMetadataError")
    assert blob_files(settings) == before
