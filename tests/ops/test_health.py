"""/healthz and /readyz over real HTTP: ready on a good store, 503 naming the blob store when it
is unreachable or hangs, naming the database when its schema is not at the head."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from tests.conftest import _postgres_admin_url, _postgres_database
from tests.ops.support import stamp
from tests.server import free_port, running_server
from xds.app import build_app
from xds.config import Settings
from xds.ops.health import health_routes
from xds.store.blobs import FileBlobStore, StoreUnavailable
from xds.store.db import migrate, open_engine


def test_healthz_answers_ok(server: str) -> None:
    response = httpx.get(server + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_database_schema_and_blob_store_answer(server: str) -> None:
    response = httpx.get(server + "/readyz", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok",
                               "checks": {"database": "ok", "blob_store": "ok"}}


def test_readyz_is_503_naming_the_blob_store_when_s3_is_unreachable(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    settings = Settings(data_dir=tmp_path, mllp_port=0, dicom_port=0,
                        blob_url=f"s3://xds-blobs?endpoint=http://127.0.0.1:{closed}")
    with running_server(build_app(settings)) as base:
        started = time.monotonic()
        response = httpx.get(base + "/readyz", timeout=20)
        assert time.monotonic() - started < 6
        assert httpx.get(base + "/healthz").status_code == 200  # alive, only not ready
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["blob_store"]
    assert body["checks"]["database"] == "ok"
    assert f"127.0.0.1:{closed}" in body["checks"]["blob_store"]


def test_readyz_is_503_naming_the_database_when_the_schema_is_behind(
        fresh_settings: Settings) -> None:
    with running_server(build_app(fresh_settings)) as base:
        assert httpx.get(base + "/readyz", timeout=10).status_code == 200
        stamp(fresh_settings, "0005")  # the recorded revision only: as after a rollback
        behind = httpx.get(base + "/readyz", timeout=10)
        stamp(fresh_settings, "head")
        again = httpx.get(base + "/readyz", timeout=10)
    assert behind.status_code == 503, behind.text
    assert behind.json()["failed"] == ["database"]
    assert "revision 0005, this version needs 0006" in behind.json()["checks"]["database"]
    assert again.status_code == 200, again.text


def test_readyz_is_503_naming_the_database_when_postgresql_goes_away(tmp_path: Path) -> None:
    admin_url = _postgres_admin_url()
    if not admin_url:
        pytest.skip("no PostgreSQL")
    with _postgres_database(admin_url) as url:
        settings = Settings(data_dir=tmp_path, database_url=url, mllp_port=0, dicom_port=0)
        with running_server(build_app(settings)) as base:
            assert httpx.get(base + "/readyz", timeout=10).status_code == 200
            name = make_url(url).database
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            finally:
                admin.dispose()
            response = httpx.get(base + "/readyz", timeout=10)
    assert response.status_code == 503, response.text
    assert response.json()["failed"] == ["database"]
    assert name in response.json()["checks"]["database"]  # "database ... does not exist"


class _HangingStore(FileBlobStore):
    """A filesystem store whose check never answers (until released)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.calls = 0

    def check(self) -> None:
        self.calls += 1
        self.release.wait(30)
        raise StoreUnavailable("released")


def test_readyz_answers_503_in_time_when_a_check_hangs_and_does_not_pile_up_threads(
        tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, mllp_port=0, dicom_port=0)
    engine = open_engine(settings)
    store = _HangingStore(tmp_path / "blobs")
    try:
        migrate(engine)
        app = Starlette(routes=health_routes(engine, store))
        with running_server(app) as base:
            for _ in range(2):
                started = time.monotonic()
                response = httpx.get(base + "/readyz", timeout=20)
                assert 3.5 < time.monotonic() - started < 5.5
                assert response.status_code == 503
                assert response.json()["failed"] == ["blob_store"]
                assert "no answer within" in response.json()["checks"]["blob_store"]
            assert store.calls == 1  # the second probe awaited the first, still hung, check
            store.release.set()
            time.sleep(0.2)
            response = httpx.get(base + "/readyz", timeout=20)
            assert response.json()["checks"]["blob_store"].endswith(": released")  # a new check
            assert store.calls == 2
    finally:
        store.release.set()
        engine.dispose()
