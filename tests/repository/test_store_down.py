"""The repository with its object store down ("s3" backend only): ITI-41 and ITI-43 answer
XDSRepositoryError in a RegistryResponse (no SOAP fault, no hang), nothing half-stored is left,
and ITI-68 answers an error status with an OperationOutcome.

"Down at submit" is an endpoint where nothing ever listened; "down at retrieve" is a SeaweedFS
of this test's own, stopped once a document was stored in it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests import samples, soapclient
from tests.conftest import _postgres_admin_url, _postgres_database
from tests.registry.iti42_support import assert_nothing_stored
from tests.repository.support import (
    Doc, assert_failure, assert_success, document_responses, entry_row, provide,
    repository_rows, retrieve,
)
from tests.seaweed import BUCKET, S3_ENV, running_seaweed, weed_binary
from tests.server import free_port, running_server
from xds.app import build_app
from xds.config import Settings
from xds.store.db import open_engine
from xds.store.patients import add_patient

#: Seconds a call to a repository whose store is down may take (botocore's bounded retries).
PROMPT = 60


@pytest.fixture
def postgres_url(backend: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test (the "s3" backend only)."""
    if backend != "s3":
        pytest.skip("the object store is only down on the s3 backend")
    if weed_binary() is None:
        pytest.skip("no 'weed' binary")
    admin = _postgres_admin_url()
    if not admin:
        pytest.skip("no PostgreSQL")
    for key, value in S3_ENV.items():
        os.environ.setdefault(key, value)
    with _postgres_database(admin) as url:
        yield url


@contextmanager
def repository(tmp_path: Path, database_url: str,
               blob_url: str) -> Iterator[tuple[str, Settings, Engine, str]]:
    """A server on ``blob_url``: (base URL, settings, engine, a known patient)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, mllp_port=0,
                        dicom_port=0, port=free_port(), blob_url=blob_url)
    with running_server(build_app(settings), port=settings.port) as base:
        engine = open_engine(settings)
        try:
            patient = samples.new_patient_id(settings.affinity_domain)
            add_patient(engine, patient)
            yield base, settings, engine, patient
        finally:
            engine.dispose()


def spool_files(settings: Settings) -> list[Path]:
    return [p for p in settings.spool_dir.rglob("*") if p.is_file()]


def test_submit_with_the_store_unreachable_is_a_repository_error(
        tmp_path: Path, postgres_url: str) -> None:
    never = f"s3://{BUCKET}?endpoint=http://127.0.0.1:{free_port()}"
    with repository(tmp_path, postgres_url, never) as (base, settings, engine, pid):
        docs = [Doc(b"%PDF-1.4 " + os.urandom(20_000), "application/pdf"),
                Doc(os.urandom(500), inline=True)]
        started = time.monotonic()
        reply = provide(base, pid, docs)
        assert time.monotonic() - started < PROMPT
        (error,) = assert_failure(reply, "XDSRepositoryError")
        assert "unavailable" in (error.codeContext or "")
        uids = [d.unique_id for d in docs]
        assert repository_rows(engine, uids) == []
        assert_nothing_stored(engine, pid, uids)
        assert spool_files(settings) == []


def test_retrieve_with_the_store_stopped_is_a_repository_error(
        tmp_path: Path, postgres_url: str) -> None:
    with running_seaweed(tmp_path / "seaweed") as seaweed:
        blob_url = seaweed.url(BUCKET, f"down-{secrets.token_hex(4)}")
        with repository(tmp_path, postgres_url, blob_url) as (base, settings, engine, pid):
            doc = Doc(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", "text/xml")
            assert_success(provide(base, pid, [doc]))
            repo = settings.repository_unique_id
            reply = retrieve(base, [(repo, doc.unique_id)])
            assert [r.content for r in document_responses(reply)] == [doc.content]
            binary = f"{base}/fhir/Binary/{entry_row(engine, doc.unique_id).id[9:]}"
            assert httpx.get(binary, timeout=PROMPT).content == doc.content

            for proc in seaweed.processes:  # the object store goes away (a graceful
                proc.kill()                     # weed shutdown takes ~25 s)
                proc.wait(30)

            unknown = samples.new_oid()
            started = time.monotonic()
            reply = retrieve(base, [(repo, doc.unique_id), (repo, unknown)])
            assert time.monotonic() - started < PROMPT
            response = reply.body[0]
            assert soapclient.status(response) == soapclient.FAILURE
            assert document_responses(reply) == []
            errors = {e.location: e for e in soapclient.registry_response_errors(response)}
            assert errors[doc.unique_id].errorCode == "XDSRepositoryError", errors
            assert doc.unique_id in (errors[doc.unique_id].codeContext or "")
            assert errors[unknown].errorCode == "XDSDocumentUniqueIdError", errors

            started = time.monotonic()
            answer = httpx.get(binary, timeout=PROMPT)
            assert time.monotonic() - started < PROMPT
            # 503 and "transient", as ITI-43's XDSRepositoryError: worth a retry.
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/fhir+json")
            body = answer.json()
            assert body["resourceType"] == "OperationOutcome"
            assert [i["code"] for i in body["issue"]] == ["transient"], body
            assert "unavailable" in body["issue"][0]["diagnostics"]

            # A submission now fails the same way, and leaves nothing behind.
            late = Doc(os.urandom(800))
            assert_failure(provide(base, pid, [late]), "XDSRepositoryError")
            assert repository_rows(engine, [late.unique_id]) == []
            assert spool_files(settings) == []
            # The document stored before is still known: only its bytes are out of reach.
            assert len(repository_rows(engine, [doc.unique_id])) == 1
