"""Malformed ITI-41 uploads at a real repository: broken multipart framing, dangling or missing
references, a client that goes away, a disk that fills. Each gets a precise answer and leaves no
row and no file behind (ITI TF-2 §3.41.4.1.3; App. V.8)."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree
from sqlalchemy import Engine

from tests import samples, soapclient, xsd
from tests.registry.iti42_support import snapshot
from tests.repository.support import (
    ITI41, PATH, Doc, Part, Reply, assert_failure, assert_nothing_left, assert_success,
    blob_files, stored, document_responses, pnr, post_mtom, provide, reconstructed, reply_of,
    retrieve, submission,
)
from tests.server import running_server
from xds.app import build_app
from xds.config import Settings
from xds.soap import bytes_attachment, encode_mtom
from xds.soap.spool import Spool
from xds.store.db import open_engine
from xds.store.patients import add_patient

NewPatient = Callable[..., str]
NS_SOAP = "{http://www.w3.org/2003/05/soap-envelope}"


def _mtom_bytes(pid: str, docs: list[Doc]) -> tuple[str, bytes]:
    """Content-Type and body of a well-formed ITI-41 MTOM message for ``docs``."""
    envelope = soapclient.envelope(ITI41, pnr(submission(pid, docs), docs))
    xsd.assert_valid(reconstructed(soapclient.parse_envelope(envelope), {
        d.content_id: Part(d.mime_type, d.content) for d in docs}))
    stream = encode_mtom(envelope, [bytes_attachment(d.content, d.content_id, d.mime_type)
                                    for d in docs])
    return stream.content_type, b"".join(stream.iter_bytes())


def _fault(reply: Reply, code: str, status: int, reason: str) -> None:
    """A SOAP 1.2 Fault with env:``code``, HTTP ``status`` and ``reason`` in its text."""
    assert reply.http.status_code == status, reply.http.text
    assert reply.body.tag == NS_SOAP + "Fault", etree.tostring(reply.body)
    assert reply.body.findtext(f"{NS_SOAP}Code/{NS_SOAP}Value") == f"env:{code}"
    text = reply.body.findtext(f"{NS_SOAP}Reason/{NS_SOAP}Text") or ""
    assert reason in text, text


def _post(server: str, content_type: str, body: bytes) -> Reply:
    return reply_of(soapclient.post_raw(server + PATH, body, content_type=content_type))


# -- multipart framing ----------------------------------------------------------------------------


def test_truncated_multipart_body_is_a_Sender_fault_and_leaves_nothing(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(os.urandom(200_000), "application/pdf")
    content_type, body = _mtom_bytes(pid, [doc])
    before = blob_files(settings)
    reply = _post(server, content_type, body[: len(body) * 2 // 3])  # inside the attachment
    assert reply.http.headers["content-type"].startswith("multipart/related")  # mirrored
    _fault(reply, "Sender", 400, "ends before its closing boundary")
    assert_nothing_left(engine, settings, pid, [doc.unique_id], before)


def test_boundary_that_differs_from_the_body_is_a_Sender_fault(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(os.urandom(5000))
    content_type, body = _mtom_bytes(pid, [doc])
    wrong = content_type.replace("boundary=MIMEBoundary_", "boundary=OtherBoundary_")
    assert wrong != content_type
    before = blob_files(settings)
    _fault(_post(server, wrong, body), "Sender", 400, "malformed multipart/related body")
    assert_nothing_left(engine, settings, pid, [doc.unique_id], before)


def test_missing_boundary_parameter_is_a_Sender_fault(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(os.urandom(5000))
    content_type, body = _mtom_bytes(pid, [doc])
    without = "; ".join(p for p in content_type.split("; ") if not p.startswith("boundary="))
    before = blob_files(settings)
    _fault(_post(server, without, body), "Sender", 400, "with a boundary parameter")
    assert_nothing_left(engine, settings, pid, [doc.unique_id], before)


# -- references between the envelope and the parts ----------------------------------------------


def test_xop_include_to_a_part_not_in_the_message_is_XDSMissingDocument(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    present, dangling = Doc(os.urandom(3000)), Doc(os.urandom(3000))
    docs = [present, dangling]
    envelope = soapclient.envelope(ITI41, pnr(submission(pid, docs), docs))
    before = blob_files(settings)
    reply = post_mtom(server, envelope, {present.content_id: Part("text/plain", present.content)})
    (error,) = assert_failure(reply, "XDSMissingDocument")
    assert error.location == dangling.entry_id
    assert dangling.content_id in (error.codeContext or "")
    assert_nothing_left(engine, settings, pid, [present.unique_id, dangling.unique_id], before)


def test_mime_part_no_document_includes_is_XDSMissingDocumentMetadata_and_nothing_kept(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    # Bytes without metadata: TF-3 Table 4.2.4.1-2 names "MIME part / Document with no DE".
    pid = new_patient()
    doc, stray = Doc(os.urandom(3000)), os.urandom(4000)
    envelope = soapclient.envelope(ITI41, pnr(submission(pid, [doc]), [doc]))
    before = blob_files(settings)
    reply = post_mtom(server, envelope, {doc.content_id: Part("text/plain", doc.content),
                                         "stray@tests.xds": Part("image/png", stray)})
    (error,) = assert_failure(reply, "XDSMissingDocumentMetadata")
    assert error.location == "stray@tests.xds"
    assert stored(settings, stray) is None
    assert_nothing_left(engine, settings, pid, [doc.unique_id], before)


# -- a client that goes away ----------------------------------------------------------------------


def test_client_disconnect_mid_upload_leaves_no_spool_file_and_server_keeps_serving(
        server: str, engine: Engine, settings: Settings, new_patient: NewPatient) -> None:
    pid = new_patient()
    doc = Doc(os.urandom(4 << 20), "application/octet-stream")
    content_type, body = _mtom_bytes(pid, [doc])
    before = blob_files(settings)
    url = urlsplit(server)
    head = (f"POST {PATH} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        # Wait until the attachment is being spooled, so that the cleanup has work to do.
        deadline = time.monotonic() + 5
        while blob_files(settings) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert blob_files(settings) != before, "the upload never reached the spool"
    deadline = time.monotonic() + 5
    while blob_files(settings) != before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert_nothing_left(engine, settings, pid, [doc.unique_id], before)
    after = Doc(b"the next request is served\n")
    assert_success(provide(server, pid, [after]))
    (got,) = document_responses(retrieve(server, [(settings.repository_unique_id,
                                                   after.unique_id)]))
    assert got.content == after.content


# -- a disk that fills ----------------------------------------------------------------------------


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of ``size`` mounted at ``path`` for the block (root only); skips otherwise."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill the disk needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


@contextmanager
def _server_with_small(tmp_path: Path, which: str) -> Iterator[tuple[str, Settings, str]]:
    """A registry+repository server on SQLite whose blob store or spool (``which``) is a 2 MB
    tmpfs; yields its URL, Settings and a known patient."""
    settings = Settings(data_dir=tmp_path / "data", mllp_port=0)
    small = settings.blob_dir if which == "blobs" else settings.spool_dir
    with _tmpfs(small, "2m"):
        app = build_app(settings)
        with running_server(app) as base:
            engine = open_engine(settings)
            try:
                pid = samples.new_patient_id(settings.affinity_domain)
                add_patient(engine, pid)
                yield base, settings, pid
            finally:
                engine.dispose()


def test_full_blob_store_is_XDSRepositoryOutOfResources_and_removes_what_fitted(
        tmp_path: Path) -> None:
    with _server_with_small(tmp_path, "blobs") as (base, settings, pid):
        kept = Doc(os.urandom(100_000), "application/pdf")
        assert_success(provide(base, pid, [kept]))
        before = blob_files(settings)
        # The first fits in what is left, the second does not: both must go.
        fits, too_big = Doc(os.urandom(1_200_000)), Doc(os.urandom(1_200_000))
        reply = provide(base, pid, [fits, too_big])
        (error,) = assert_failure(reply, "XDSRepositoryOutOfResources")
        engine = open_engine(settings)
        try:
            # ``pid`` keeps ``kept``; the uniqueIds of this submission are nowhere.
            assert_nothing_left(engine, settings, "no-such-patient",
                                [fits.unique_id, too_big.unique_id], before)
            assert snapshot(engine, pid)["document_entry"] == 1  # only ``kept``
        finally:
            engine.dispose()
        (got,) = document_responses(retrieve(base, [(settings.repository_unique_id,
                                                     kept.unique_id)]))
        assert got.content == kept.content


def test_full_spool_is_a_507_fault_and_leaves_no_spool_file(tmp_path: Path) -> None:
    with _server_with_small(tmp_path, "spool") as (base, settings, pid):
        before = blob_files(settings)
        doc = Doc(os.urandom(3 << 20))
        reply = provide(base, pid, [doc])
        _fault(reply, "Receiver", 507, "XDSRepositoryOutOfResources")
        engine = open_engine(settings)
        try:
            assert_nothing_left(engine, settings, pid, [doc.unique_id], before)
        finally:
            engine.dispose()
        # Once the big upload is gone the spool has room again.
        small = Doc(b"fits\n")
        assert_success(provide(base, pid, [small]))


def test_full_spool_while_decoding_inline_base64_is_XDSRepositoryOutOfResources(
        tmp_path: Path) -> None:
    with _server_with_small(tmp_path, "spool") as (base, settings, pid):
        before = blob_files(settings)
        doc = Doc(os.urandom(3 << 20), inline=True)
        reply = provide(base, pid, [doc], mtom=False)
        assert_failure(reply, "XDSRepositoryOutOfResources")
        engine = open_engine(settings)
        try:
            assert_nothing_left(engine, settings, pid, [doc.unique_id], before)
        finally:
            engine.dispose()


def test_spool_file_is_removed_when_the_final_flush_fails_on_a_full_disk(tmp_path: Path) -> None:
    # Small writes stay in the file buffer, so close() fails again after the first ENOSPC; the
    # file must be deleted all the same (found while filling the spool through the server).
    spool_dir = tmp_path / "spool"
    with _tmpfs(spool_dir, "1m"):
        spool = Spool(spool_dir)
        with pytest.raises(OSError) as raised:
            for _ in range(2000):
                spool.write(os.urandom(1000))
        assert raised.value.errno == errno.ENOSPC
        spool.discard()
        assert list(spool_dir.iterdir()) == []
