"""ITI-43 Retrieve Document Set at a real repository over HTTP: several documents per call,
unknown documents and repositories, an MTOM answer streamed from the store and read by zeep
(ITI TF-2 §3.43.4-5)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import httpx
import pytest
import zeep
from lxml import etree
from sqlalchemy import Engine

from tests import samples, soapclient, xsd
from tests.repository.support import (
    ITI43, ITI43_RESPONSE, PATH, Doc, assert_failure, assert_success,
    Part, document_responses, post_mtom, provide, reconstructed, retrieve, retrieve_request,
)
from xds.config import Settings
from xds.soap import MtomMessage, read_multipart
from xds.soap.xmlparse import parse_xml
from xds.store.patients import add_patient

HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"
NS_XDS = "{urn:ihe:iti:xds-b:2007}"


@pytest.fixture(scope="module")
def stored(server: str, engine: Engine, settings: Settings) -> list[Doc]:
    """Three documents of different types, stored through ITI-41 once per backend."""
    pid = samples.new_patient_id(settings.affinity_domain)
    add_patient(engine, pid)
    docs = [Doc(b"%PDF-1.7\n" + os.urandom(70_000) + b"\n%%EOF", "application/pdf"),
            Doc(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>\n", "text/xml"),
            Doc(bytes(range(256)) * 300, "application/octet-stream")]
    assert_success(provide(server, pid, docs))
    return docs


def test_several_documents_are_returned_byte_identical_with_ids_echoed(
        server: str, settings: Settings, stored: list[Doc]) -> None:
    repo = settings.repository_unique_id
    message_id = f"urn:uuid:{uuid.uuid4()}"
    envelope = soapclient.envelope(ITI43, retrieve_request(
            [(repo, stored[0].unique_id, HOME), (repo, stored[1].unique_id),
             (repo, stored[2].unique_id, HOME)]), message_id=message_id)
    reply = post_mtom(server, envelope, {})
    assert_success(reply, ITI43_RESPONSE)
    assert soapclient.header(reply.envelope, "RelatesTo") == message_id
    got = document_responses(reply)
    assert [(r.home_community_id, r.repository_unique_id, r.document_unique_id) for r in got] == [
        (HOME, repo, stored[0].unique_id), (None, repo, stored[1].unique_id),
        (HOME, repo, stored[2].unique_id)]
    for r, doc in zip(got, stored, strict=True):
        assert r.content == doc.content
        assert r.mime_type == r.part_type == doc.mime_type
    # Sizes come from the table, so the streamed MTOM body has a Content-Length.
    assert int(reply.http.headers["content-length"]) == len(reply.http.content)


def test_simple_soap_request_is_answered_with_mtom(
        server: str, settings: Settings, stored: list[Doc]) -> None:
    reply = retrieve(server, [(settings.repository_unique_id, stored[1].unique_id)], mtom=False)
    assert_success(reply, ITI43_RESPONSE)
    (got,) = document_responses(reply)
    assert got.content == stored[1].content


def test_one_unknown_document_is_PartialSuccess_with_XDSDocumentUniqueIdError(
        server: str, settings: Settings, stored: list[Doc]) -> None:
    repo, unknown = settings.repository_unique_id, samples.new_oid()
    reply = retrieve(server, [(repo, stored[0].unique_id), (repo, unknown),
                              (repo, stored[2].unique_id)])
    (error,) = assert_failure(reply, "XDSDocumentUniqueIdError",
                              status=soapclient.PARTIAL_SUCCESS)
    assert error.location == unknown
    got = document_responses(reply)
    assert [r.document_unique_id for r in got] == [stored[0].unique_id, stored[2].unique_id]
    assert [r.content for r in got] == [stored[0].content, stored[2].content]
    assert len(reply.parts) == 2


def test_all_unknown_is_Failure_without_document_responses(
        server: str, settings: Settings) -> None:
    repo, unknown = settings.repository_unique_id, [samples.new_oid(), samples.new_oid()]
    reply = retrieve(server, [(repo, uid) for uid in unknown])
    errors = assert_failure(reply, "XDSDocumentUniqueIdError")
    assert [e.location for e in errors] == unknown
    assert document_responses(reply) == [] and reply.parts == {}


def test_another_repository_id_is_XDSUnknownRepositoryId(
        server: str, settings: Settings, stored: list[Doc]) -> None:
    other = "1.2.3.4.5.99"
    # Even a uniqueId this repository holds is not served under another repository's id.
    reply = retrieve(server, [(other, stored[0].unique_id)])
    (error,) = assert_failure(reply, "XDSUnknownRepositoryId")
    assert error.location == stored[0].unique_id
    mixed = retrieve(server, [(settings.repository_unique_id, stored[1].unique_id),
                              (other, stored[2].unique_id)])
    (error,) = assert_failure(mixed, "XDSUnknownRepositoryId", status=soapclient.PARTIAL_SUCCESS)
    assert error.location == stored[2].unique_id
    assert [r.document_unique_id for r in document_responses(mixed)] == [stored[1].unique_id]


def test_document_request_without_repository_unique_id_is_XDSRepositoryError(
        server: str) -> None:
    body = (b'<xds:RetrieveDocumentSetRequest xmlns:xds="urn:ihe:iti:xds-b:2007">'
            b'<xds:DocumentRequest><xds:DocumentUniqueId>1.2.3</xds:DocumentUniqueId>'
            b'</xds:DocumentRequest></xds:RetrieveDocumentSetRequest>')
    envelope = soapclient.envelope(ITI43, body)
    reply = post_mtom(server, envelope, {}, check_request=False)  # invalid on purpose
    assert_failure(reply, "XDSRepositoryError")


def test_30_megabyte_document_is_read_from_the_response_stream(
        server: str, settings: Settings, engine: Engine, tmp_path: Path) -> None:
    pid = samples.new_patient_id(settings.affinity_domain)
    add_patient(engine, pid)
    big = Doc(os.urandom(1 << 20) * 30, "application/dicom")
    assert_success(provide(server, pid, [big]))
    envelope = soapclient.envelope(ITI43, retrieve_request(
        [(settings.repository_unique_id, big.unique_id)]))
    xsd.assert_valid(envelope)

    async def fetch() -> tuple[int, MtomMessage]:
        async with httpx.AsyncClient(timeout=60) as client:
            async with client.stream("POST", server + PATH, content=envelope, headers={
                    "Content-Type": soapclient.CONTENT_TYPE}) as response:
                assert response.status_code == 200
                length = int(response.headers["content-length"])
                # The product's streaming reader: parts go to disk as they arrive.
                message = await read_multipart(response.aiter_bytes(),
                                               response.headers["content-type"], tmp_path,
                                               1 << 20)
                return length, message

    length, message = asyncio.run(fetch())
    assert length > len(big.content)
    envelope_el = parse_xml(message.root, max_bytes=1 << 20)
    (part,) = message.attachments.values()
    assert part.size == len(big.content)
    assert part.sha256 == hashlib.sha256(big.content).hexdigest()
    assert part.content_type == "application/dicom"
    body = envelope_el.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert body is not None
    href = body.find(f".//{NS_XDS}Document/{{http://www.w3.org/2004/08/xop/include}}Include")
    assert href is not None and href.get("href") == f"cid:{part.content_id}"
    xsd.assert_valid(reconstructed(envelope_el, {
        part.content_id: Part(part.content_type, part.path.read_bytes())}))
    message.close()


class _SchemaCheck(zeep.Plugin):
    """Validates what zeep sends and what it received (after its own XOP reconstruction)."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    def egress(self, envelope: etree._Element, http_headers: dict[str, str],
               operation: object, binding_options: object) -> tuple[etree._Element,
                                                                     dict[str, str]]:
        xsd.assert_valid(envelope)
        self.checked.append("request")
        return envelope, http_headers

    def ingress(self, envelope: etree._Element, http_headers: dict[str, str],
                operation: object) -> tuple[etree._Element, dict[str, str]]:
        xsd.assert_valid(envelope)
        self.checked.append("response")
        return envelope, http_headers


def _zeep_retrieve(server: str, settings: Settings, docs: list[Doc]) -> list[tuple[object, ...]]:
    check = _SchemaCheck()
    client = zeep.Client(server + PATH + "?wsdl", plugins=[check])  # type: ignore[no-untyped-call]
    # The WSDL's one SOAP 1.2 binding (its port is DocumentRepository_Port_Soap12).
    service = client.create_service(  # type: ignore[no-untyped-call]
        "{urn:ihe:iti:xds-b:2007}DocumentRepository_Binding", server + PATH)
    result = service.DocumentRepository_RetrieveDocumentSet(DocumentRequest=[
        {"HomeCommunityId": HOME, "RepositoryUniqueId": settings.repository_unique_id,
         "DocumentUniqueId": doc.unique_id} for doc in docs])
    assert check.checked == ["request", "response"]
    assert result.RegistryResponse.status == soapclient.SUCCESS
    return [(r.HomeCommunityId, r.DocumentUniqueId, r.mimeType, r.Document)
            for r in result.DocumentResponse]


def test_zeep_parses_the_mtom_response(server: str, settings: Settings, stored: list[Doc]) -> None:
    docs = [stored[0], stored[2]]  # neither starts nor ends with CR or LF: see the next test
    assert _zeep_retrieve(server, settings, docs) == [
        (HOME, d.unique_id, d.mime_type, d.content) for d in docs]


@pytest.mark.xfail(strict=True, reason="zeep 4.3.3 zeep/wsdl/attachments.py Attachment.content "
                   "returns content.strip(b'\\r\\n') for Content-Transfer-Encoding: binary, so a "
                   "document ending in a newline loses it (our part is exact: see "
                   "test_several_documents_are_returned_byte_identical_with_ids_echoed)")
def test_zeep_keeps_a_trailing_newline(server: str, settings: Settings,
                                       stored: list[Doc]) -> None:
    assert stored[1].content.endswith(b"\n")
    ((*_, content),) = _zeep_retrieve(server, settings, [stored[1]])
    assert content == stored[1].content
