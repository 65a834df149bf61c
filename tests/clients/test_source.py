"""Document Source (ITI-41 initiator): metadata built for files, the request it sends, and a real
submission through the repository into the registry (found again with ITI-18)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from tests import samples, xsd
from xds.clients.consumer import DocumentConsumer, quote, quote_list
from xds.clients.source import (
    CLASS_CODE, FORMAT_CODE, build_submission, new_unique_id, parse_code, provide_and_register,
    provide_and_register_request,
)
from xds.ebrim.documententry import parse_document_entry
from xds.ebrim.submission import build_submit_objects_request, parse_submit_objects_request
from xds.ebrim.vocabulary import (
    AssociationType, DocumentEntryType, ResponseStatus, Status, StoredQuery,
)
from xds.model.errors import ErrorCode
from xds.model.metadata import Association, Author, Folder
from xds.model.values import Code, LocalizedString, is_oid
from xds.registry.validate import validate_submission
from xds.soap.ns import SOAP12_ENV, WSA, WSA_ANONYMOUS, XOP

PID = "4711^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
_XDS = "{urn:ihe:iti:xds-b:2007}"


def _files(tmp_path: Path, **contents: bytes) -> list[Path]:
    paths = []
    for name, data in contents.items():
        path = tmp_path / name.replace("_", ".")
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_build_submission_takes_defaults_from_the_files(tmp_path: Path) -> None:
    pdf, txt, odd = _files(tmp_path, report_pdf=b"%PDF-1.4", notes_txt=b"hi", scan_qqq=b"\0")
    mtime = datetime(2024, 3, 5, 14, 30, 7, tzinfo=UTC).timestamp()
    os.utime(pdf, (mtime, mtime))

    sub = build_submission([pdf, txt, odd], PID)

    ss = sub.submission_set
    assert ss.entry_uuid == "SubmissionSet01" and ss.patient_id == PID
    assert ss.source_id and is_oid(ss.source_id) and ss.content_type_code is not None
    assert ss.submission_time and len(ss.submission_time) == 14
    assert [de.entry_uuid for de in sub.document_entries] == ["Document01", "Document02", "Document03"]
    assert [de.mime_type for de in sub.document_entries] == [
        "application/pdf", "text/plain", "application/octet-stream"]
    assert [de.title.value for de in sub.document_entries if de.title] == [
        "report.pdf", "notes.txt", "scan.qqq"]
    first = sub.document_entries[0]
    assert first.creation_time == "20240305143007"
    assert first.object_type == DocumentEntryType.Stable
    assert first.source_patient_id == PID and first.patient_id == PID
    assert first.language_code == "en-US"
    assert first.format_code == FORMAT_CODE and first.class_code == CLASS_CODE
    assert first.hash is None and first.size is None and first.repository_unique_id is None
    unique_ids = [ss.unique_id] + [de.unique_id for de in sub.document_entries]
    assert all(u and u.startswith("2.25.") and is_oid(u) for u in unique_ids)
    assert len(set(unique_ids)) == 4
    assert [(a.source_object, a.target_object, a.association_type, a.submission_set_status)
            for a in sub.associations] == [
        ("SubmissionSet01", f"Document0{i}", AssociationType.HasMember, ["Original"])
        for i in (1, 2, 3)]


def test_built_submission_passes_the_registry_rules_once_the_repository_completes_it(
    tmp_path: Path
) -> None:
    sub = build_submission(_files(tmp_path, a_txt=b"a", b_xml=b"<b/>"), PID,
                           author=Author(person="^Welby^Marcus^^^Dr^MD"))
    for de in sub.document_entries:  # what the repository adds before ITI-42
        de.hash, de.size, de.repository_unique_id = "0" * 40, "1", "1.2.3"
    assert validate_submission(sub) == []


def test_build_submission_overrides_and_refusals(tmp_path: Path) -> None:
    (path,) = _files(tmp_path, x_bin=b"x")
    code = parse_code("11488-4^^2.16.840.1.113883.6.1^Consult note")
    sub = build_submission([path], PID, title="Consult", class_code=code, mime_type="text/x-custom",
                           source_id="1.2.3.4", language_code="de-CH")
    de = sub.document_entries[0]
    assert de.class_code == code and de.mime_type == "text/x-custom"
    assert de.title == LocalizedString("Consult", lang="de-CH") and de.language_code == "de-CH"
    assert sub.submission_set.source_id == "1.2.3.4"
    with pytest.raises(ValueError, match="id\\^\\^\\^&OID&ISO"):
        build_submission([path], "4711")
    with pytest.raises(ValueError, match="at least one"):
        build_submission([], PID)


def test_parse_code_accepts_code_scheme_and_optional_display() -> None:
    assert parse_code("N^^2.16.840.1.113883.5.25") == Code(
        "N", "2.16.840.1.113883.5.25", LocalizedString("N"))
    assert parse_code("N^^2.16.840.1.113883.5.25^normal") == Code(
        "N", "2.16.840.1.113883.5.25", LocalizedString("normal"))
    for bad in ("N", "N^2.16", "N^x^2.16", "^^2.16", "N^^"):
        with pytest.raises(ValueError):
            parse_code(bad)
    assert new_unique_id() != new_unique_id()


def test_build_submit_objects_request_round_trips_and_orders_objects(tmp_path: Path) -> None:
    sub = build_submission(_files(tmp_path, a_txt=b"a", b_pdf=b"b"), PID,
                           author=Author(person="^Welby^Marcus^^^Dr^MD", institutions=["Hospital"]))
    sub.folders.append(Folder(entry_uuid="Folder01", title=LocalizedString("Folder"),
                              unique_id=new_unique_id(), patient_id=PID,
                              codes=[parse_code("57133-1^^2.16.840.1.113883.6.1^Referral note")]))
    sub.associations.append(Association(
        entry_uuid="Association09", association_type=AssociationType.HasMember,
        source_object="SubmissionSet01", target_object="Folder01"))

    root = build_submit_objects_request(sub)
    xsd.assert_valid(root)
    kinds = [(etree.QName(el).localname, el.get("id")) for el in root[0]]
    assert kinds == [("RegistryPackage", "SubmissionSet01"), ("ExtrinsicObject", "Document01"),
                     ("ExtrinsicObject", "Document02"), ("RegistryPackage", "Folder01"),
                     ("Association", "Association01"), ("Association", "Association02"),
                     ("Association", "Association09")]
    assert parse_submit_objects_request(etree.fromstring(etree.tostring(root))) == sub


def _inline_xop(envelope: etree._Element) -> None:
    """XOP reconstruction for validation: each xop:Include becomes the base64 of its part."""
    for include in envelope.iter(f"{{{XOP}}}Include"):
        holder = include.getparent()
        assert holder is not None
        holder.remove(include)
        holder.text = base64.b64encode(b"content").decode()


def test_request_envelope_is_schema_valid_with_addressing_and_one_part_per_document(
    tmp_path: Path
) -> None:
    files = _files(tmp_path, a_txt=b"alpha", b_pdf=b"%PDF-1.4 beta")
    sub = build_submission(files, PID)
    url = "http://repository.example/xds/repository"
    stream = provide_and_register_request(url, sub, files)

    envelope = etree.fromstring(stream.root)
    header = envelope.find(f"{{{SOAP12_ENV}}}Header")
    assert header is not None
    action = header.find(f"{{{WSA}}}Action")
    assert action is not None and action.text == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    assert action.get(f"{{{SOAP12_ENV}}}mustUnderstand") == "1"
    assert (header.findtext(f"{{{WSA}}}MessageID") or "").startswith("urn:uuid:")
    assert header.findtext(f"{{{WSA}}}To") == url
    assert header.findtext(f"{{{WSA}}}ReplyTo/{{{WSA}}}Address") == WSA_ANONYMOUS
    documents = envelope.findall(f".//{_XDS}Document")
    assert [d.get("id") for d in documents] == ["Document01", "Document02"]
    hrefs = [d[0].get("href") for d in documents]
    assert hrefs == [f"cid:{a.content_id}" for a in stream.attachments]
    assert [a.content_type for a in stream.attachments] == ["text/plain", "application/pdf"]

    _inline_xop(envelope)
    xsd.assert_valid(envelope)
    body = b"".join(stream.iter_bytes())
    assert len(body) == stream.content_length == int(stream.headers["Content-Length"])
    assert b"alpha" in body and b"%PDF-1.4 beta" in body


def _find(registry_url: str, pid: str) -> list[etree._Element]:
    response = DocumentConsumer(registry_url).stored_query(StoredQuery.FindDocuments, [
        ("$XDSDocumentEntryPatientId", [quote(pid)]),
        ("$XDSDocumentEntryStatus", [quote_list([Status.Approved])])])
    return list(response.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExtrinsicObject"))


def test_submit_two_files_then_the_registry_finds_them_with_their_metadata(
    server: str, registry_url: str, new_patient: Callable[..., str], tmp_path: Path
) -> None:
    pid = new_patient()
    files = _files(tmp_path, report_pdf=b"%PDF-1.4 " + os.urandom(5000), note_txt=b"hello")
    type_code = parse_code("11488-4^^2.16.840.1.113883.6.1^Consult note")
    sub = build_submission(files, pid, type_code=type_code)
    seen: list[tuple[int, int | None]] = []

    result = provide_and_register(server + "/xds/repository", sub, files,
                                  progress=lambda done, total: seen.append((done, total)))

    assert result.status == ResponseStatus.Success and result.success, result.errors
    assert seen and seen[-1][0] == seen[-1][1]
    found = {de.unique_id: de for de in map(parse_document_entry, _find(registry_url, pid))}
    assert set(found) == {de.unique_id for de in sub.document_entries}
    for de, path in zip(sub.document_entries, files, strict=True):
        stored = found[de.unique_id]
        assert stored.mime_type == de.mime_type
        assert stored.title is not None and stored.title.value == path.name
        assert stored.type_code == type_code and stored.class_code == CLASS_CODE
        assert stored.size == str(path.stat().st_size)  # set by the repository
        assert stored.creation_time == de.creation_time


def test_submit_for_an_unknown_patient_fails_with_the_registry_error(
    server: str, tmp_path: Path
) -> None:
    files = _files(tmp_path, a_txt=b"a")
    sub = build_submission(files, samples.new_patient_id())
    result = provide_and_register(server + "/xds/repository", sub, files)
    assert result.status == ResponseStatus.Failure and not result.success
    assert [e.code for e in result.errors] == [ErrorCode.XDSUnknownPatientId]

