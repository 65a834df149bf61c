"""Options shared by every subcommand that touches the store or calls a server, each also read
from ``XDS_*``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xds.config import Settings
from xds.security.credentials import NO_CREDENTIALS, Credentials
from xds.security.wsse import MAX_ASSERTION_BYTES, read_assertion

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from xds.audit.clients import ClientTrail
    from xds.store.blobs import BlobStore

__all__ = ["DataDir", "DatabaseUrl", "BlobUrl", "ClientCert", "ClientKey", "ClientCa", "Saml", "AuditUrl",
           "settings_from", "store_engine", "blob_store", "credentials_from", "trail_settings",
           "client_trail"]

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="XDS_DATA_DIR", help="Data directory (default ./xds-data).")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="XDS_DATABASE_URL",
    help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir).")]
BlobUrl = Annotated[str | None, typer.Option(
    "--blob-url", envvar="XDS_BLOB_URL",
    help="Where document bytes live: file:///path, or s3://bucket/prefix?endpoint=URL (the "
         "prefix optional) for an S3-compatible store, credentials from AWS_ACCESS_KEY_ID and "
         "AWS_SECRET_ACCESS_KEY (default: <data-dir>/blobs).")]
ClientCert = Annotated[str | None, typer.Option(
    "--cert", envvar="XDS_CLIENT_CERT", help="PEM client certificate for mutual TLS.")]
ClientKey = Annotated[str | None, typer.Option(
    "--key", envvar="XDS_CLIENT_KEY", help="PEM private key of --cert.")]
ClientCa = Annotated[str | None, typer.Option(
    "--ca", envvar="XDS_CLIENT_CA",
    help="PEM CA bundle the server's certificate must chain to (default: the system store).")]
Saml = Annotated[Path | None, typer.Option(
    "--saml", envvar="XDS_SAML",
    help="File with a signed saml2:Assertion, sent in wsse:Security (XUA, ITI-40).")]

AuditUrl = Annotated[str | None, typer.Option(
    "--audit-url", envvar="XDS_AUDIT_URL",
    help="Audit Record Repository (syslog+tls://host:6514, syslog+tcp://, syslog+udp://): the "
         "transaction is audited (ATNA) in the outbox of --data-dir/--database-url and sent "
         "when the command ends; what the repository does not take stays there for the next "
         "audited command or a 'xds serve' on the same store. Default: no audit, no database.")]


def store_engine(settings: Settings) -> Engine:
    """An Engine on the store of ``settings``, its schema created when the database is empty;
    a schema of another version stops the command (exit 2) with what to do."""
    from xds.store.db import SchemaMismatch, ensure_schema, open_engine

    engine = open_engine(settings)
    try:
        ensure_schema(engine)
    except SchemaMismatch as exc:
        engine.dispose()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return engine


def blob_store(settings: Settings) -> BlobStore:
    """The blob store of ``settings``; a bad ``--blob-url`` is a usage error (exit 2)."""
    from xds.store.blobs import open_blob_store

    try:
        return open_blob_store(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--blob-url") from None


def settings_from(**options: object) -> Settings:
    """Settings from ``XDS_*`` variables overridden by the given command-line options."""
    return Settings.from_env(None, **options)


def credentials_from(cert: str | None, key: str | None, ca: str | None,
                     saml: Path | None = None) -> Credentials:
    """The Credentials of ``--cert/--key/--ca/--saml``; a bad option is a usage error."""
    assertion = None
    if saml is not None:
        try:
            with saml.open("rb") as f:
                assertion = f.read(MAX_ASSERTION_BYTES + 1)
            read_assertion(assertion)
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--saml") from None
    if key and not cert:
        raise typer.BadParameter("--key needs --cert", param_hint="--key")
    for option, path in (("--cert", cert), ("--key", key), ("--ca", ca)):
        if path and not Path(path).is_file():
            raise typer.BadParameter(f"no such file: {path}", param_hint=option)
    return Credentials(ca=ca or "", cert=cert or "", key=key or "", saml=assertion)


def trail_settings(data_dir: Path | None, database_url: str | None, audit_url: str | None,
                   credentials: Credentials = NO_CREDENTIALS) -> Settings:
    """The Settings of a client command's audit trail: its store, the ARR, and the command's
    client certificate and CAs (``--cert/--key/--ca``) for a syslog+tls repository. A URL of
    no syslog transport is a usage error."""
    if audit_url:
        from urllib.parse import urlsplit

        from xds.audit.syslog import DEFAULT_PORTS

        parts = urlsplit(audit_url)
        if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
            raise typer.BadParameter(
                f"{audit_url!r}: use syslog+tls://host:port, syslog+tcp:// or syslog+udp://",
                param_hint="--audit-url")
    return settings_from(data_dir=data_dir, database_url=database_url, audit_url=audit_url,
                         client_cert=credentials.cert or None, client_key=credentials.key or None,
                         client_ca=credentials.ca or None)


def client_trail(data_dir: Path | None, database_url: str | None, audit_url: str | None,
                 credentials: Credentials = NO_CREDENTIALS) -> ClientTrail:
    """The audit trail of a client command: the store of ``--data-dir``/``--database-url``,
    active only with ``--audit-url``; the XUA requestor of ``--saml``."""
    from xds.audit.clients import ClientTrail

    return ClientTrail(trail_settings(data_dir, database_url, audit_url, credentials),
                       credentials.saml)
