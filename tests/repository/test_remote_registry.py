"""A repository whose registry is another server: ITI-41 at B becomes ITI-42 over SOAP to A;
A's rejection and A's absence come back to the caller and B keeps nothing (ITI TF-2
§3.41.4.1.3 steps 5-6)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from sqlalchemy import Engine

from tests import samples
from tests.registry.iti42_support import assert_nothing_stored, snapshot
from tests.repository.support import (
    PATH, Doc, assert_failure, assert_nothing_left, assert_success, blob_files, stored,
    document_responses, entry_row, provide, repository_rows, retrieve, sha1,
)
from tests.server import free_port, running_server
from xds.app import build_app
from xds.config import Settings
from xds.store.db import open_engine
from xds.store.patients import add_patient

REPOSITORY_B = "1.3.6.1.4.1.21367.13.50.2"


class Node(NamedTuple):
    """One running server: its base URL, Settings and an Engine on its own database."""

    url: str
    settings: Settings
    engine: Engine


@pytest.fixture(scope="module")
def registry_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """Server A: the Document Registry only, on its own SQLite file."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("registry-a"), actors="registry",
                        mllp_port=0)
    with _serve(settings) as node:
        yield node


def _repository(data_dir: Path, registry_url: str) -> AbstractContextManager[Node]:
    """A repository-only server on its own SQLite file, registering at ``registry_url``."""
    return _serve(Settings(data_dir=data_dir, actors="repository", registry_url=registry_url,
                           repository_unique_id=REPOSITORY_B))


@pytest.fixture(scope="module")
def repository_b(registry_a: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """Server B: the Document Repository only, registering at A, on another SQLite file."""
    with _repository(tmp_path_factory.mktemp("repository-b"),
                     registry_a.url + "/xds/registry") as node:
        yield node


@contextmanager
def _serve(settings: Settings) -> Iterator[Node]:
    with running_server(build_app(settings)) as url:
        engine = open_engine(settings)
        try:
            yield Node(url, settings, engine)
        finally:
            engine.dispose()


def _known_patient(registry: Node) -> str:
    pid = samples.new_patient_id(registry.settings.affinity_domain)
    add_patient(registry.engine, pid)
    return pid


def test_each_server_mounts_only_its_actor(registry_a: Node, repository_b: Node) -> None:
    assert httpx.get(registry_a.url + PATH + "?wsdl").status_code == 404
    assert httpx.get(repository_b.url + "/xds/registry?wsdl").status_code == 404
    assert httpx.get(repository_b.url + PATH + "?wsdl").status_code == 200


def test_submission_to_b_is_registered_in_a(registry_a: Node, repository_b: Node) -> None:
    pid = _known_patient(registry_a)
    docs = [Doc(b"%PDF-1.4\n" + os.urandom(9000), "application/pdf"),
            Doc(b"inline text\n", inline=True)]
    assert_success(provide(repository_b.url, pid, docs))
    for doc in docs:
        entry = entry_row(registry_a.engine, doc.unique_id)
        assert (entry.hash, entry.size, entry.repository_unique_id) == (
            sha1(doc.content), len(doc.content), REPOSITORY_B)
        (row,) = repository_rows(repository_b.engine, [doc.unique_id])
        assert row.repository_unique_id == REPOSITORY_B
        assert stored(repository_b.settings, doc.content) == doc.content
    # The metadata lives in A only; the bytes in B only.
    assert_nothing_stored(repository_b.engine, pid, [d.unique_id for d in docs])
    assert snapshot(registry_a.engine, pid)["document_entry"] == 2
    assert repository_rows(registry_a.engine, [d.unique_id for d in docs]) == []
    got = document_responses(retrieve(repository_b.url, [(REPOSITORY_B, d.unique_id)
                                                         for d in docs]))
    assert [g.content for g in got] == [d.content for d in docs]


def test_registry_rejection_from_a_is_relayed_by_b_which_keeps_nothing(
        registry_a: Node, repository_b: Node) -> None:
    unknown = samples.new_patient_id(registry_a.settings.affinity_domain)
    docs = [Doc(os.urandom(5000)), Doc(os.urandom(300), inline=True)]
    before = blob_files(repository_b.settings)
    errors = assert_failure(provide(repository_b.url, unknown, docs), "XDSUnknownPatientId")
    assert any(unknown in (e.codeContext or "") for e in errors), errors
    uids = [d.unique_id for d in docs]
    assert_nothing_left(repository_b.engine, repository_b.settings, unknown, uids, before,
                        registry_engine=registry_a.engine)


def test_unreachable_registry_is_XDSRegistryNotAvailable_and_nothing_is_kept(
        registry_a: Node, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/xds/registry"  # nothing listens there
    with _repository(tmp_path / "repository-c", closed) as node:
        pid = _known_patient(registry_a)
        docs = [Doc(os.urandom(5000), "application/pdf")]
        before = blob_files(node.settings)
        (error,) = assert_failure(provide(node.url, pid, docs), "XDSRegistryNotAvailable")
        assert closed in (error.codeContext or "")
        assert_nothing_left(node.engine, node.settings, pid, [docs[0].unique_id], before,
                            registry_engine=registry_a.engine)
