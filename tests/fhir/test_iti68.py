"""ITI-68 Retrieve Document over real HTTP: ``GET /fhir/Binary/{id}`` (the attachment.url)
answers the bytes submitted through ITI-41, the same as ITI-43, with the mimeType; 410 for a
deprecated entry, 404 for unknown ids and documents of another repository, 406 for an Accept
that excludes the mimeType."""

from __future__ import annotations

import os

import httpx
import pytest
from sqlalchemy import Engine, select

from tests import samples
from tests.fhir.support import check_outcome, get
from tests.fhir.test_iti67 import Corpus, build_corpus
from tests.registry.iti18_support import document, submit
from tests.repository.support import Doc, assert_success, document_responses, provide, retrieve
from xds.config import Settings
from xds.store.patients import add_patient
from xds.store.tables import document_entry


@pytest.fixture(scope="module")
def corpus(server: str, engine: Engine, settings: Settings) -> Corpus:
    """The documents of ``build_corpus``, submitted once per backend."""
    return build_corpus(server, engine, settings)


def _binary(server: str, resource: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{server}/fhir/Binary/{resource}", headers=headers, timeout=60)


@pytest.mark.parametrize("name", ["a", "b", "d"])
def test_the_attachment_url_answers_the_submitted_bytes(
        server: str, settings: Settings, corpus: Corpus, name: str) -> None:
    ref = get(f"{server}/fhir/DocumentReference/{corpus.bare(name)}").json()
    url = ref["content"][0]["attachment"]["url"]
    response = httpx.get(url.replace(settings.base_url, server), timeout=60)
    doc = corpus.docs[name]
    assert response.status_code == 200, response.text
    assert response.content == doc.content
    assert response.headers["content-type"].split(";")[0] == doc.mime_type
    assert int(response.headers["content-length"]) == len(doc.content)
    (retrieved,) = document_responses(
        retrieve(server, [(settings.repository_unique_id, doc.unique_id)]))
    assert retrieved.content == response.content


@pytest.mark.parametrize("accept", ["*/*", "application/*", "application/pdf",
                                    "text/html, application/pdf;q=0.9"])
def test_an_accept_that_takes_the_mime_type_is_served(server: str, corpus: Corpus,
                                                      accept: str) -> None:
    response = _binary(server, corpus.bare("b"), Accept=accept)
    assert response.status_code == 200 and response.content == corpus.docs["b"].content


@pytest.mark.parametrize("accept", ["text/plain", "application/fhir+json", "image/*"])
def test_an_accept_that_excludes_the_mime_type_is_406(server: str, corpus: Corpus,
                                                      accept: str) -> None:
    check_outcome(_binary(server, corpus.bare("b"), Accept=accept), 406)


def test_format_xml_is_406(server: str, corpus: Corpus) -> None:
    check_outcome(httpx.get(f"{server}/fhir/Binary/{corpus.bare('b')}",
                            params={"_format": "xml"}, timeout=60), 406)


def test_deprecated_entry_is_410(server: str, corpus: Corpus) -> None:
    check_outcome(_binary(server, corpus.bare("c")), 410, "deleted")


@pytest.mark.parametrize("resource", ["0b5f3c0e-0000-4000-8000-000000000000", "x'--",
                                      "a" * 65])
def test_unknown_id_is_404(server: str, resource: str) -> None:
    check_outcome(_binary(server, resource), 404, "not-found")


def test_a_document_of_another_repository_is_404(server: str, registry_url: str,
                                                 corpus: Corpus) -> None:
    entry, de = document(corpus.pid)  # repositoryUniqueId: the samples' default, not ours
    submit(registry_url, samples.submission_set(patient_id=corpus.pid), de,
           samples.has_member("hm", "SubmissionSet01", entry, "Original"))
    body = check_outcome(_binary(server, entry.removeprefix("urn:uuid:")), 404)
    assert samples.REPOSITORY_UNIQUE_ID in body["issue"][0]["diagnostics"]


def test_a_document_of_several_chunks_streams_whole(server: str, engine: Engine,
                                                    settings: Settings) -> None:
    pid = samples.new_patient_id(settings.affinity_domain)
    add_patient(engine, pid)
    doc = Doc(os.urandom(3 * 1024 * 1024 + 17), "application/octet-stream")
    assert_success(provide(server, pid, [doc]))
    with engine.connect() as conn:
        entry = conn.execute(select(document_entry.c.id).where(
            document_entry.c.unique_id == doc.unique_id)).scalar_one()
    response = _binary(server, entry.removeprefix("urn:uuid:"))
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(doc.content))
    assert response.content == doc.content


def test_a_range_resumes_a_large_document(server: str, engine: Engine,
                                          settings: Settings) -> None:
    """A client that lost the connection halfway asks for the rest (Range, If-Range)."""
    pid = samples.new_patient_id(settings.affinity_domain)
    add_patient(engine, pid)
    content = os.urandom(2 * 1024 * 1024 + 5)
    doc = Doc(content, "application/octet-stream")
    assert_success(provide(server, pid, [doc]))
    with engine.connect() as conn:
        entry = conn.execute(select(document_entry.c.id).where(
            document_entry.c.unique_id == doc.unique_id)).scalar_one()
    bare = entry.removeprefix("urn:uuid:")
    whole = _binary(server, bare)
    assert whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]
    half = len(content) // 2
    rest = _binary(server, bare, Range=f"bytes={half}-", **{"If-Range": etag})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes {half}-{len(content) - 1}/{len(content)}"
    assert whole.content[:half] + rest.content == content
    middle = _binary(server, bare, Range="bytes=1000-1999")
    assert middle.status_code == 206 and middle.content == content[1000:2000]
    past = _binary(server, bare, Range=f"bytes={len(content)}-")
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(content)}"
