"""Options shared by every subcommand that touches the store or calls a server, each also read
from ``XDS_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xds.config import Settings
from xds.security.credentials import Credentials
from xds.security.wsse import MAX_ASSERTION_BYTES, read_assertion

__all__ = ["DataDir", "DatabaseUrl", "ClientCert", "ClientKey", "ClientCa", "Saml",
           "settings_from", "credentials_from"]

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="XDS_DATA_DIR", help="Data directory (default ./xds-data).")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="XDS_DATABASE_URL",
    help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir).")]
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
