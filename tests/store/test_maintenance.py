"""``xds blobs verify`` and ``xds blobs gc`` on every backend, against a server of their own.

Each backend gets a store nobody else writes to (a fresh data directory, a fresh SQLite file or
PostgreSQL database, on "s3" a fresh prefix of the session's SeaweedFS), so a gc with
``--grace 0s`` can only touch what these tests made. What is damaged on purpose (a corrupt or
missing blob) is put back before the test ends, and every orphan made is collected.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, insert, select, update
from typer.testing import CliRunner, Result

from tests import samples, soapclient
from tests.conftest import fresh_database
from tests.imaging.dicomgen import make_study
from tests.repository.support import (
    Doc, assert_success, document_responses, entry_row, provide, retrieve,
)
from tests.seaweed import BUCKET, Seaweed
from tests.server import free_port, running_server
from xds.app import build_app, imaging_source
from xds.cli import app
from xds.config import Settings
from xds.ebrim.rim import Element
from xds.imaging.intake import store_file
from xds.model.errors import RegistryError
from xds.repository import iti41
from xds.repository.context import Repository
from xds.store.blobs import BlobStore, FileBlobStore, open_blob_store
from xds.store.db import open_engine
from xds.store.maintenance import GcReport, collect_garbage, verify_blobs
from xds.store.patients import add_patient
from xds.store.s3 import S3BlobStore
from xds.store.tables import dicom_instance, repository_document

runner = CliRunner()
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass
class Site:
    """A server with a store of its own, and one known patient."""

    settings: Settings
    server: str
    engine: Engine
    store: BlobStore
    patient: str

    @property
    def repository(self) -> str:
        return self.settings.repository_unique_id


@pytest.fixture(scope="module")
def site(backend: str, request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp(f"maintenance-{backend}")
    with fresh_database(backend, data_dir) as database_url:
        blob_url = ""
        if backend == "s3":
            seaweed: Seaweed = request.getfixturevalue("seaweed")
            blob_url = seaweed.url(BUCKET, f"maintenance-{secrets.token_hex(4)}")
        settings = Settings(data_dir=data_dir, database_url=database_url, mllp_port=0,
                            dicom_port=0, port=free_port(), blob_url=blob_url)
        with running_server(build_app(settings), port=settings.port) as server:
            engine = open_engine(settings)
            try:
                patient = samples.new_patient_id(settings.affinity_domain)
                add_patient(engine, patient)
                yield Site(settings, server, engine, open_blob_store(settings), patient)
            finally:
                engine.dispose()




# -- helpers ---------------------------------------------------------------------------------------


def blobs(site: Site, *args: str, env: dict[str, str] | None = None) -> Result:
    """``xds blobs <args>`` on the site's store (through XDS_* variables, as cron would)."""
    environ = {"XDS_DATA_DIR": str(site.settings.data_dir),
               "XDS_DATABASE_URL": site.settings.effective_database_url,
               "XDS_BLOB_URL": site.settings.blob_url}
    return runner.invoke(app, ["blobs", *args], env={**environ, **(env or {})})


def flat(result: Result) -> str:
    """stdout with every run of whitespace one space (Rich wraps long lines)."""
    return " ".join(result.stdout.split())


def removed(result: Result, verb: str = "removed") -> set[str]:
    """The SHA-256 that ``xds blobs gc`` says it removed (or would remove)."""
    return set(re.findall(rf"^{verb} ([0-9a-f]{{64}})$", result.stdout, re.M))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def referenced(site: Site) -> set[str]:
    """Every blob a row refers to, read straight from the tables."""
    with site.engine.connect() as conn:
        docs = set(conn.execute(select(repository_document.c.sha256)).scalars())
        images = set(conn.execute(select(dicom_instance.c.sha256)
                                  .where(dicom_instance.c.sha256.is_not(None))).scalars())
    return docs | images


def assert_all_referenced_intact(site: Site) -> None:
    """Every blob a row refers to is stored with the bytes of its address."""
    for sha in referenced(site):
        assert sha256(b"".join(site.store.open(sha))) == sha


def overwrite(site: Site, sha: str, data: bytes) -> None:
    """Replace the stored object of ``sha`` by ``data`` behind the store's back."""
    store = site.store
    if isinstance(store, S3BlobStore):
        store.client.put_object(Bucket=store.bucket, Key=store.key(sha), Body=data)
    else:
        assert isinstance(store, FileBlobStore)
        path = store.path(sha)
        assert path == site.settings.blob_dir / sha[:2] / sha[2:4] / sha and path.is_file()
        path.write_bytes(data)


def orphan(site: Site, data: bytes | None = None) -> str:
    """Bytes in the store that no row refers to (what a crash before the commit leaves)."""
    info, new = site.store.put([data if data is not None else os.urandom(3000)])
    assert new
    return info.sha256


def provided(site: Site, *docs: Doc) -> list[Doc]:
    assert_success(provide(site.server, site.patient, list(docs)))
    return list(docs)


def assert_retrievable(site: Site, docs: list[Doc]) -> None:
    """ITI-43 returns every one of ``docs`` byte-identical."""
    reply = retrieve(site.server, [(site.repository, d.unique_id) for d in docs])
    got = {r.document_unique_id: r.content for r in document_responses(reply)}
    assert got == {d.unique_id: d.content for d in docs}


@pytest.fixture(scope="module")
def corpus(site: Site, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Doc], str]:
    """Three documents through ITI-41 and one DICOM instance through the imaging intake;
    (the documents, the instance's SHA-256)."""
    docs = provided(site, Doc(b"%PDF-1.7\n" + os.urandom(50_000), "application/pdf"),
                    Doc(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", "text/xml"),
                    Doc(os.urandom(1000), "application/octet-stream", inline=True))
    study = make_study(tmp_path_factory.mktemp("study"), modalities=("CT",), per_series=1)
    instance = store_file(imaging_source(site.engine, site.settings), study.files[0])
    assert instance.sha256 == sha256(study.files[0].read_bytes())
    return docs, instance.sha256


# -- verify ----------------------------------------------------------------------------------------


def test_verify_checks_every_referenced_blob(site: Site, corpus: tuple[list[Doc], str]) -> None:
    docs, image = corpus
    expected = referenced(site)
    assert {sha256(d.content) for d in docs} | {image} <= expected
    result = blobs(site, "verify")
    assert result.exit_code == 0, result.output
    n = len(expected)
    assert f"checked {n} of {n} blobs" in flat(result)
    assert "0 problem(s)" in flat(result)
    report = verify_blobs(site.engine, site.store)
    assert report.ok and report.checked == n
    assert report.bytes_read >= sum(len(d.content) for d in docs)


@pytest.mark.parametrize("which", ["document", "dicom"])
def test_verify_names_a_corrupt_blob(site: Site, corpus: tuple[list[Doc], str],
                                     which: str) -> None:
    docs, image = corpus
    sha = sha256(docs[0].content) if which == "document" else image
    original = b"".join(site.store.open(sha))
    # Same size, other bytes: only the digest can tell.
    overwrite(site, sha, bytes(b ^ 0x55 for b in original))
    try:
        result = blobs(site, "verify")
        assert result.exit_code == 1, result.output
        assert re.search(rf"\bcorrupt {sha}: SHA-256 of the stored bytes is", flat(result))
        named = set(_SHA.findall(result.stdout)) - {sha256(bytes(b ^ 0x55 for b in original))}
        assert named == {sha}, "only the damaged blob is named"
        assert "1 problem(s)" in flat(result)
    finally:
        overwrite(site, sha, original)
    assert blobs(site, "verify").exit_code == 0


def test_verify_reports_a_missing_blob(site: Site, corpus: tuple[list[Doc], str]) -> None:
    docs, _ = corpus
    sha = sha256(docs[1].content)
    site.store.delete(sha)
    try:
        result = blobs(site, "verify")
        assert result.exit_code == 1, result.output
        assert f"missing {sha}: no stored object" in flat(result)
        assert set(_SHA.findall(result.stdout)) == {sha}
        entry = entry_row(site.engine, docs[1].unique_id).id.removeprefix("urn:uuid:")
        binary = httpx.get(f"{site.server}/fhir/Binary/{entry}", timeout=60)
        assert binary.status_code == 404 and "missing" in binary.text, binary.text
    finally:
        site.store.put([docs[1].content])
    assert blobs(site, "verify").exit_code == 0


def test_verify_sample_checks_exactly_that_many(site: Site,
                                                corpus: tuple[list[Doc], str]) -> None:
    n = len(referenced(site))
    assert n >= 4
    # Options rather than variables this time.
    result = runner.invoke(app, ["blobs", "verify", "--sample", "1",
                                 "--data-dir", str(site.settings.data_dir),
                                 "--database-url", site.settings.effective_database_url,
                                 "--blob-url", site.settings.blob_url])
    assert result.exit_code == 0, result.output
    assert f"checked 1 of {n} blobs" in flat(result)
    assert verify_blobs(site.engine, site.store, sample=2).checked == 2
    assert verify_blobs(site.engine, site.store, sample=n + 5).checked == n
    assert blobs(site, "verify", "--sample", "0").exit_code == 2


def test_verify_sample_finds_damage_when_it_samples_everything(
        site: Site, corpus: tuple[list[Doc], str]) -> None:
    docs, _ = corpus
    sha = sha256(docs[2].content)
    overwrite(site, sha, docs[2].content + b"!")  # one byte longer
    try:
        result = blobs(site, "verify", "--sample", str(len(referenced(site))))
        assert result.exit_code == 1, result.output
        assert f"corrupt {sha}" in flat(result)
    finally:
        overwrite(site, sha, docs[2].content)


# -- gc --------------------------------------------------------------------------------------------


def test_gc_spares_young_orphans_and_removes_old_ones(site: Site,
                                                      corpus: tuple[list[Doc], str]) -> None:
    docs, _ = corpus
    mine = {orphan(site), orphan(site)}
    result = blobs(site, "gc")  # default grace: 1h
    assert result.exit_code == 0, result.output
    assert removed(result) == set()
    assert all(site.store.exists(sha) for sha in mine)
    assert re.search(r"younger than 1h, removed 0 \(0 bytes\)", flat(result))

    result = blobs(site, "gc", "--grace", "0s")
    assert result.exit_code == 0, result.output
    assert mine <= removed(result)
    assert not removed(result) & referenced(site)
    assert not any(site.store.exists(sha) for sha in mine)
    assert f"removed {len(removed(result))} (" in flat(result)
    assert_all_referenced_intact(site)
    assert_retrievable(site, docs)
    assert blobs(site, "verify").exit_code == 0


def test_gc_dry_run_lists_and_removes_nothing(site: Site, corpus: tuple[list[Doc], str]) -> None:
    mine = orphan(site)
    result = blobs(site, "gc", "--grace", "0s", "--dry-run")
    assert result.exit_code == 0, result.output
    assert mine in removed(result, "would remove")
    assert removed(result) == set()
    assert site.store.exists(mine)
    result = blobs(site, "gc", "--grace", "0s")
    assert mine in removed(result)
    assert not site.store.exists(mine)


def _leave_a_crashed_writer(site: Site) -> Callable[[], bool]:
    """What a writer killed mid-upload leaves; a function telling whether it is still there."""
    store = site.store
    if isinstance(store, S3BlobStore):
        key = store.key(sha256(os.urandom(8)))
        upload = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)["UploadId"]

        def left() -> bool:
            found = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
            return upload in {u["UploadId"] for u in found.get("Uploads", [])}

        return left
    tmp = site.settings.blob_dir / "tmp" / f"tmp{secrets.token_hex(4)}"
    tmp.write_bytes(b"half a document")
    return tmp.exists


def test_gc_sweeps_what_crashed_writers_left(site: Site, corpus: tuple[list[Doc], str]) -> None:
    left = _leave_a_crashed_writer(site)
    assert left()
    assert blobs(site, "gc").exit_code == 0
    assert left(), "a young upload may still complete"
    assert blobs(site, "gc", "--grace", "0s", "--dry-run").exit_code == 0
    assert left(), "a dry run removes nothing"
    result = blobs(site, "gc", "--grace", "0s")
    assert result.exit_code == 0, result.output
    assert not left()
    assert "1 unfinished upload(s) or temp file(s)" in flat(result)
    assert_all_referenced_intact(site)


def test_gc_drops_rows_of_documents_never_registered(site: Site,
                                                     corpus: tuple[list[Doc], str]) -> None:
    docs, _ = corpus
    # A registered document, made to look as old as the crashed one: it stays.
    (kept,) = provided(site, Doc(os.urandom(2000)))
    lost_bytes, fresh_bytes = os.urandom(2500), os.urandom(2600)
    lost, fresh = samples.new_oid(), samples.new_oid()
    with site.engine.begin() as conn:
        conn.execute(update(repository_document)
                     .where(repository_document.c.document_unique_id == kept.unique_id)
                     .values(created="20000101000000"))
        for uid, data, created in ((lost, lost_bytes, "20000101000000"),
                                   (fresh, fresh_bytes, time.strftime("%Y%m%d%H%M%S",
                                                                      time.gmtime()))):
            site.store.put([data])
            conn.execute(insert(repository_document).values(
                repository_unique_id=site.repository, document_unique_id=uid,
                sha256=sha256(data), sha1=hashlib.sha1(data).hexdigest(), size=len(data),
                mime_type="text/plain", created=created))

    def rows() -> set[str]:
        with site.engine.connect() as conn:
            return set(conn.execute(select(repository_document.c.document_unique_id).where(
                repository_document.c.document_unique_id.in_([kept.unique_id, lost, fresh])))
                .scalars())

    result = blobs(site, "gc", "--dry-run", "--grace", "0s")
    assert rows() == {kept.unique_id, lost, fresh}, "a dry run drops no row"
    result = blobs(site, "gc")  # 1h: the old row goes; its blob is young yet
    assert result.exit_code == 0, result.output
    assert "1 never-registered document row(s)" in flat(result)
    assert rows() == {kept.unique_id, fresh}
    assert site.store.exists(sha256(lost_bytes))

    result = blobs(site, "gc", "--grace", "0s")
    assert result.exit_code == 0, result.output
    assert sha256(lost_bytes) in removed(result)
    assert not site.store.exists(sha256(lost_bytes))
    # A row of a submission still in flight (ITI-42 not answered yet) is spared even so.
    assert rows() == {kept.unique_id, fresh}
    assert site.store.exists(sha256(fresh_bytes))
    assert site.store.exists(sha256(kept.content))
    assert_retrievable(site, [*docs, kept])
    with site.engine.begin() as conn:  # leave no unregistered row behind for later tests
        conn.execute(repository_document.delete().where(
            repository_document.c.document_unique_id == fresh))
    assert blobs(site, "gc", "--grace", "0s").exit_code == 0
    assert blobs(site, "verify").exit_code == 0


def test_gc_with_zero_grace_spares_a_submission_between_store_and_register(
        site: Site, corpus: tuple[list[Doc], str]) -> None:
    """ITI-41 commits its rows, then sends ITI-42: a row not registered *yet* is not a crash's
    leftover, whatever --grace says; dropping it would lose a document the registry is about
    to list (Success, then XDSDocumentUniqueIdError on retrieve)."""
    data, uid = os.urandom(1500), samples.new_oid()
    created = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 30))  # 30 s in flight
    site.store.put([data])
    with site.engine.begin() as conn:
        conn.execute(insert(repository_document).values(
            repository_unique_id=site.repository, document_unique_id=uid, sha256=sha256(data),
            sha1=hashlib.sha1(data).hexdigest(), size=len(data), mime_type="text/plain",
            created=created))
    try:
        result = blobs(site, "gc", "--grace", "0s")
        assert result.exit_code == 0, result.output
        assert "0 never-registered document row(s)" in flat(result)
        with site.engine.connect() as conn:
            assert conn.execute(select(repository_document.c.sha256).where(
                repository_document.c.document_unique_id == uid)).scalar_one() == sha256(data)
        assert site.store.exists(sha256(data))
    finally:
        with site.engine.begin() as conn:
            conn.execute(repository_document.delete().where(
                repository_document.c.document_unique_id == uid))
    assert sha256(data) in removed(blobs(site, "gc", "--grace", "0s"))


def test_gc_while_a_retry_waits_for_the_registry_keeps_its_document(
        site: Site, corpus: tuple[list[Doc], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A first attempt crashed between store and register (its bytes and an old unregistered
    row are left); the client retries, the retry finds that row and sends ITI-42, and gc runs
    meanwhile: it must not take the row for the crash's leftover."""
    doc = Doc(os.urandom(1800))
    site.store.put([doc.content])
    with site.engine.begin() as conn:
        conn.execute(insert(repository_document).values(
            repository_unique_id=site.repository, document_unique_id=doc.unique_id,
            sha256=sha256(doc.content), sha1=hashlib.sha1(doc.content).hexdigest(),
            size=len(doc.content), mime_type=doc.mime_type, created="20000101000000"))
    register = iti41._register
    collected: list[GcReport] = []

    def gc_then_register(repository: Repository, submission: Element) -> list[RegistryError]:
        collected.append(collect_garbage(site.engine, site.store, grace=0))
        return register(repository, submission)

    monkeypatch.setattr(iti41, "_register", gc_then_register)
    reply = provide(site.server, site.patient, [doc])
    monkeypatch.undo()
    assert len(collected) == 1
    assert_success(reply)
    assert collected[0].unregistered_rows == 0
    assert sha256(doc.content) not in collected[0].removed_keys
    assert_retrievable(site, [doc])


@pytest.mark.parametrize("grace", ["xyz", "1y", "", "-5m"])
def test_a_bad_grace_is_a_usage_error(site: Site, grace: str) -> None:
    result = blobs(site, "gc", "--grace", grace)
    assert result.exit_code == 2, result.output
    assert "--grace" in result.stderr


@pytest.mark.parametrize("command", ["verify", "gc", "init"])
def test_a_bad_blob_url_is_a_usage_error(site: Site, command: str) -> None:
    result = blobs(site, command, "--blob-url", "ftp://x")
    assert result.exit_code == 2, result.output
    assert "--blob-url" in result.stderr and "ftp://x" in result.stderr
    result = blobs(site, command, env={"XDS_BLOB_URL": "s3://b?endpoint=http://x&color=red"})
    assert result.exit_code == 2, result.output


def test_init_makes_the_store_ready(site: Site, backend: str) -> None:
    result = blobs(site, "init")
    assert result.exit_code == 0, result.output
    assert f"blob store ready: {site.store.describe()}" in flat(result)
    if backend == "s3":
        down = f"s3://{BUCKET}?endpoint=http://127.0.0.1:{free_port()}"
        result = blobs(site, "init", "--blob-url", down)
        assert result.exit_code == 1, result.output
        assert "xds blobs init: object store" in " ".join(result.stderr.split())
        result = blobs(site, "gc", "--grace", "0s", "--blob-url", down)
        assert result.exit_code == 1, result.output
        result = blobs(site, "verify", "--sample", "1", "--blob-url", down)
        assert result.exit_code == 1 and "unreadable" in flat(result), result.output


# -- the race gc must never lose -------------------------------------------------------------------


def test_gc_racing_a_submission_of_the_orphaned_bytes_never_loses_them(
        site: Site, corpus: tuple[list[Doc], str]) -> None:
    outcomes: list[str] = []
    for _ in range(20):
        data = os.urandom(4000)
        sha = orphan(site, data)
        doc = Doc(data)
        failure: list[BaseException] = []

        def gc(failure: list[BaseException] = failure) -> None:
            try:
                time.sleep(random.uniform(0, 0.08))
                collect_garbage(site.engine, site.store, grace=0)
            except BaseException as exc:  # reported below
                failure.append(exc)

        thread = threading.Thread(target=gc)
        thread.start()
        reply = provide(site.server, site.patient, [doc])
        thread.join(60)
        assert not thread.is_alive() and not failure, failure
        status = soapclient.status(reply.body)
        codes = {e.errorCode for e in soapclient.registry_response_errors(reply.body)}
        if status == soapclient.SUCCESS:
            outcomes.append("stored")
            assert site.store.exists(sha)
            assert_retrievable(site, [doc])
        else:
            outcomes.append("busy")
            assert codes == {"XDSRepositoryBusy"}, codes
        # Whatever gc does next, a referenced blob stays.
        collect_garbage(site.engine, site.store, grace=0)
        if status == soapclient.SUCCESS:
            assert_retrievable(site, [doc])
        else:
            assert not site.store.exists(sha)
    assert "stored" in outcomes, outcomes
    assert_all_referenced_intact(site)
    assert_retrievable(site, corpus[0])


def test_gc_sweeps_the_spool_a_killed_worker_left(site: Site,
                                                 corpus: tuple[list[Doc], str]) -> None:
    spool = site.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    part = spool / f"att-{secrets.token_hex(4)}.part"
    part.write_bytes(b"the first half of an MTOM part")
    keep_dir = spool / f"metrics-{secrets.token_hex(4)}"
    keep_dir.mkdir()
    assert blobs(site, "gc").exit_code == 0
    assert part.exists(), "a young spool file may belong to a request being received"
    result = blobs(site, "gc", "--grace", "0s")
    assert result.exit_code == 0, result.output
    assert not part.exists()
    assert keep_dir.is_dir()
    keep_dir.rmdir()
