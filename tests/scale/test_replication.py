"""A SeaweedFS cluster with replication 002 (three copies on three volume servers) behind the
repository: a volume server is killed and every stored document still comes back
byte-identical through ITI-43; submissions made while it is down either succeed and are
retrievable or fail cleanly with nothing registered."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import samples, soapclient
from tests.repository.support import ITI43_RESPONSE, Doc, assert_success, document_responses, provide, \
    repository_rows, retrieve
from tests.conftest import fresh_database
from tests.seaweed import BUCKET, Seaweed, running_seaweed, weed_binary
from tests.server import running_server
from xds.config import Settings
from xds.store.blobs import open_blob_store
from xds.store.maintenance import verify_blobs
from xds.store.patients import add_patient
from xds.store.db import open_engine

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="no 'weed' binary")


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Seaweed, Settings, str]]:
    """A 3-volume-server cluster (replication 002), a fresh PostgreSQL, and the server."""
    from xds.app import build_app

    root = tmp_path_factory.mktemp("replicated")
    with running_seaweed(root / "seaweed", volumes=3, replication="002") as cluster, \
            fresh_database("postgresql", root) as url:
        settings = Settings(data_dir=root / "data", database_url=url, mllp_port=0, dicom_port=0,
                            actors="registry,repository", blob_url=cluster.url(BUCKET, "docs"))
        with running_server(build_app(settings)) as base:
            yield cluster, settings, base


def _documents() -> list[Doc]:
    sizes = [1, 700, 64 * 1024, 3 * 1024 * 1024, 20 * 1024 * 1024 + 17]  # 20 MB: multipart
    return [Doc(os.urandom(size), "application/octet-stream") for size in sizes * 3]


def _retrieve_all(base: str, settings: Settings, docs: list[Doc]) -> None:
    for doc in docs:
        reply = retrieve(base, [(settings.repository_unique_id, doc.unique_id)])
        assert_success(reply, ITI43_RESPONSE)
        (got,) = document_responses(reply)
        assert got.content == doc.content, f"{doc.unique_id}: bytes differ"


def test_documents_survive_a_killed_volume_server(
        replicated: tuple[Seaweed, Settings, str], tmp_path: Path) -> None:
    cluster, settings, base = replicated
    engine = open_engine(settings)
    pid = samples.new_patient_id(settings.affinity_domain)
    add_patient(engine, pid)
    docs = _documents()
    for doc in docs:
        assert_success(provide(base, pid, [doc]))
    _retrieve_all(base, settings, docs)

    cluster.kill_volume(0)

    _retrieve_all(base, settings, docs)
    report = verify_blobs(engine, open_blob_store(settings))
    assert report.ok and report.checked == len(docs), report.problems

    # Written while one of three copies is gone (SeaweedFS cannot place a third copy until the
    # server returns): a clean answer either way, in bounded time.
    late = Doc(os.urandom(100_000))
    started = time.monotonic()
    reply = provide(base, pid, [late], timeout=180)
    assert time.monotonic() - started < 120
    if soapclient.status(reply.body) == soapclient.SUCCESS:
        _retrieve_all(base, settings, [late])
    else:
        assert soapclient.error_codes(reply.body) == ["XDSRepositoryError"]
        assert repository_rows(engine, [late.unique_id]) == []
    engine.dispose()
