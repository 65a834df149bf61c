"""Fixtures of the audit tests: a migrated database of their own per backend, emptied before
each test, its Settings, and TLS files for a mutual-TLS syslog receiver."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete

from tests.conftest import BACKENDS, _postgres_admin_url, _postgres_database
from xds.config import Settings
from xds.security.certs import issue, make_ca
from xds.security.tls import server_context
from xds.store.db import migrate, open_engine, write_transaction
from xds.store.tables import audit_outbox


@dataclass(frozen=True, slots=True)
class Outbox:
    """A database with the audit outbox, and the Settings that name it."""

    engine: Engine
    settings: Settings


@pytest.fixture(scope="module", params=BACKENDS)
def _outbox_db(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outbox]:
    data_dir = tmp_path_factory.mktemp("audit")
    if request.param == "sqlite":
        settings = Settings(data_dir=data_dir, mllp_port=0, dicom_port=0)
        yield from _migrated(settings)
        return
    admin = _postgres_admin_url()
    if not admin:
        pytest.skip("no PostgreSQL")
    with _postgres_database(admin) as url:
        yield from _migrated(Settings(data_dir=data_dir, database_url=url, mllp_port=0,
                                      dicom_port=0))


def _migrated(settings: Settings) -> Iterator[Outbox]:
    engine = open_engine(settings)
    migrate(engine)
    try:
        yield Outbox(engine, settings)
    finally:
        engine.dispose()


@pytest.fixture
def outbox(_outbox_db: Outbox) -> Outbox:
    """An empty audit outbox, on SQLite and on PostgreSQL."""
    with write_transaction(_outbox_db.engine) as conn:
        conn.execute(delete(audit_outbox))
    return _outbox_db


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A CA, the ARR's server certificate and this node's client certificate, as PEM files."""

    ca: Path
    server: tuple[Path, Path]
    client: tuple[Path, Path]

    def server_context(self) -> ssl.SSLContext:
        return server_context(str(self.server[0]), str(self.server[1]), str(self.ca))

    def client_settings(self, settings: Settings, url: str) -> Settings:
        return dataclasses.replace(settings, audit_url=url, client_ca=str(self.ca),
                                   client_cert=str(self.client[0]), client_key=str(self.client[1]))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    folder = tmp_path_factory.mktemp("audit-tls")
    ca = make_ca("audit test CA")
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    issue(ca, "127.0.0.1", hosts=["127.0.0.1", "localhost"], client=False).write(
        folder / "arr.pem", folder / "arr-key.pem")
    issue(ca, "xds node", server=False).write(folder / "node.pem", folder / "node-key.pem")
    return TlsFiles(folder / "ca.pem", (folder / "arr.pem", folder / "arr-key.pem"),
                    (folder / "node.pem", folder / "node-key.pem"))
