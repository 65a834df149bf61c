"""ITI-43 initiator: documents come back byte-identical, into a directory or chosen paths;
PartialSuccess keeps what came; unknown repository ids, inline base64 and SOAP Faults."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.applications import Starlette

from tests import xsd
from tests.server import running_server
from xds.clients.retrieve import DocumentRequest, retrieve, retrieve_request
from xds.clients.source import RepositoryFault, build_submission, provide_and_register
from xds.config import Settings
from xds.ebrim.vocabulary import ResponseStatus
from xds.model.errors import ErrorCode
from xds.model.metadata import Submission


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _submitted(server: str, pid: str, tmp_path: Path, **contents: bytes) -> tuple[Submission, list[Path]]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    files = []
    for name, data in contents.items():
        files.append(src / name)
        files[-1].write_bytes(data)
    sub = build_submission(files, pid)
    result = provide_and_register(server + "/xds/repository", sub, files)
    assert result.success, result.errors
    return sub, files


def _no_spool_left(directory: Path) -> bool:
    return not list(directory.glob("att-*.part"))


def test_retrieve_into_a_directory_gives_byte_identical_files(
    server: str, settings: Settings, new_patient: Callable[..., str], tmp_path: Path
) -> None:
    sub, files = _submitted(server, new_patient(), tmp_path,
                            **{"scan.pdf": os.urandom(300_000), "note.txt": b"plain text ending in CRLF\r\n"})
    out = tmp_path / "out"
    seen: list[tuple[int, int | None]] = []
    result = retrieve(server + "/xds/repository",
                      [(settings.repository_unique_id, de.unique_id or "", None)
                       for de in sub.document_entries],
                      out, progress=lambda done, total: seen.append((done, total)))

    assert result.status == ResponseStatus.Success and result.errors == []
    assert [d.document_unique_id for d in result.documents] == [
        de.unique_id for de in sub.document_entries]
    for doc, original in zip(result.documents, files, strict=True):
        assert doc.path.parent == out and doc.path.suffix == original.suffix
        assert _sha256(doc.path) == _sha256(original) == doc.sha256
        assert doc.size == original.stat().st_size
    assert [d.mime_type for d in result.documents] == ["application/pdf", "text/plain"]
    assert seen and seen[-1][0] == seen[-1][1]
    assert _no_spool_left(out)


def test_retrieve_to_chosen_paths(
    server: str, settings: Settings, new_patient: Callable[..., str], tmp_path: Path
) -> None:
    sub, files = _submitted(server, new_patient(), tmp_path, **{"a.bin": b"A" * 1000, "b.bin": b"B"})
    targets = [tmp_path / "x" / "first.dat", tmp_path / "x" / "second.dat"]
    result = retrieve(server + "/xds/repository",
                      [DocumentRequest(settings.repository_unique_id, de.unique_id or "")
                       for de in sub.document_entries], targets)
    assert result.status == ResponseStatus.Success
    assert [d.path for d in result.documents] == targets
    assert [t.read_bytes() for t in targets] == [f.read_bytes() for f in files]


def test_one_unknown_document_gives_partial_success_and_keeps_the_others(
    server: str, settings: Settings, new_patient: Callable[..., str], tmp_path: Path
) -> None:
    sub, files = _submitted(server, new_patient(), tmp_path, **{"a.txt": b"one", "b.txt": b"two"})
    repo = settings.repository_unique_id
    known = [de.unique_id or "" for de in sub.document_entries]
    out = tmp_path / "out"
    result = retrieve(server + "/xds/repository",
                      [(repo, known[0], None), (repo, "1.2.3.999.404", None), (repo, known[1], None)],
                      out)
    assert result.status == ResponseStatus.PartialSuccess
    assert [(e.code, e.location) for e in result.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, "1.2.3.999.404")]
    assert [d.document_unique_id for d in result.documents] == known
    assert sorted(p.name for p in out.iterdir()) == sorted(d.path.name for d in result.documents)
    assert [d.path.read_bytes() for d in result.documents] == [b"one", b"two"]


def test_unknown_repository_id_is_reported_and_nothing_saved(
    server: str, settings: Settings, new_patient: Callable[..., str], tmp_path: Path
) -> None:
    sub, _ = _submitted(server, new_patient(), tmp_path, **{"a.txt": b"one"})
    out = tmp_path / "out"
    result = retrieve(server + "/xds/repository",
                      [("1.2.3.4.5.6.7", sub.document_entries[0].unique_id or "", None)], out)
    assert result.status == ResponseStatus.Failure
    assert [e.code for e in result.errors] == [ErrorCode.XDSUnknownRepositoryId]
    assert result.documents == [] and list(out.iterdir()) == []


def test_request_is_schema_valid_and_names_every_document() -> None:
    url = "http://repository.example/xds/repository"
    envelope = etree.fromstring(retrieve_request(url, [
        DocumentRequest("1.2.3", "4.5.6"), DocumentRequest("1.2.3", "4.5.7", "urn:oid:1.2.9")]))
    xsd.assert_valid(envelope)
    ns = {"x": "urn:ihe:iti:xds-b:2007", "a": "http://www.w3.org/2005/08/addressing"}
    assert envelope.xpath("//x:DocumentUniqueId/text()", namespaces=ns) == ["4.5.6", "4.5.7"]
    assert envelope.xpath("//x:HomeCommunityId/text()", namespaces=ns) == ["urn:oid:1.2.9"]
    assert envelope.xpath("//a:To/text()", namespaces=ns) == [url]
    assert envelope.xpath("//a:Action/text()", namespaces=ns) == [
        "urn:ihe:iti:2007:RetrieveDocumentSet"]


# -- answers our repository never gives, from a stub ---------------------------------------------

_INLINE = """<?xml version="1.0"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
    xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>
  <a:Action s:mustUnderstand="1">urn:ihe:iti:2007:RetrieveDocumentSetResponse</a:Action>
 </s:Header><s:Body>
 <x:RetrieveDocumentSetResponse xmlns:x="urn:ihe:iti:xds-b:2007"
     xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0">
  <rs:RegistryResponse status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>
  <x:DocumentResponse><x:RepositoryUniqueId>1.2.3</x:RepositoryUniqueId>
   <x:DocumentUniqueId>4.5.6</x:DocumentUniqueId><x:mimeType>text/plain</x:mimeType>
   <x:Document>{b64}</x:Document></x:DocumentResponse>
 </x:RetrieveDocumentSetResponse></s:Body></s:Envelope>"""

_FAULT = """<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>
 <s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en">busy today</s:Text>
 </s:Reason></s:Fault></s:Body></s:Envelope>"""


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    """A fake repository: POST /inline answers inline base64 (Simple SOAP), /mtom the same in an
    unoptimised MTOM root part, /fault a SOAP Fault."""
    inline = _INLINE.format(b64=base64.b64encode(b"inline document").decode()).encode()

    async def answer(request: Request) -> Response:
        await request.body()
        kind = request.path_params["kind"]
        if kind == "fault":
            return Response(_FAULT, 500, media_type="application/soap+xml")
        if kind == "inline":
            return Response(inline, media_type="application/soap+xml")
        mtom = (b"--B\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\r\n"
                b"Content-ID: <root>\r\n\r\n" + inline + b"\r\n--B--\r\n")
        return Response(mtom, headers={"Content-Type": 'multipart/related; boundary=B; '
                                       'type="application/xop+xml"; start="<root>"'})

    app = Starlette(routes=[Route("/{kind}", answer, methods=["POST"])])
    with running_server(app) as base:
        yield base


@pytest.mark.parametrize("kind", ["inline", "mtom"])
def test_inline_base64_documents_are_decoded_to_the_file(stub: str, kind: str, tmp_path: Path) -> None:
    result = retrieve(f"{stub}/{kind}", [("1.2.3", "4.5.6", None)], [tmp_path / "doc.txt"])
    assert result.status == ResponseStatus.Success
    assert (tmp_path / "doc.txt").read_bytes() == b"inline document"
    assert result.documents[0].size == len(b"inline document")
    assert _no_spool_left(tmp_path)


def test_soap_fault_raises_repository_fault(stub: str, tmp_path: Path) -> None:
    with pytest.raises(RepositoryFault, match="busy today"):
        retrieve(f"{stub}/fault", [("1.2.3", "4.5.6", None)], tmp_path)
