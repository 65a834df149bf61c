"""``xds publish``: send (or replace) a study's KOS manifest to the Document Repository (RAD-68)."""

from __future__ import annotations

from typing import Annotated

import typer

from xds.cli.imaging import local_source
from xds.audit.clients import ClientTrail
from xds.cli.options import (
    AuditUrl, ClientCa, ClientCert, ClientKey, DatabaseUrl, DataDir, Saml, credentials_from,
    trail_settings,
)

__all__ = ["publish"]


def publish(
    study: Annotated[str, typer.Option("--study", help="Study Instance UID to publish.")],
    repository_url: Annotated[str | None, typer.Option(
        "--repository-url", envvar="XDS_IMAGING_REPOSITORY_URL",
        help="Document Repository ITI-41 endpoint (default: this server's /xds/repository).")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    cert: ClientCert = None,
    key: ClientKey = None,
    ca: ClientCa = None,
    saml: Saml = None,
    audit_url: AuditUrl = None,
) -> None:
    """Publish the manifest of STUDY now (an RPLC of the previous one when there is one).

    The export (RAD-68) is always audited in the store's outbox; with --audit-url the command
    also sends what the outbox holds when it ends (else a xds serve on the store does)."""
    from xds.imaging.publish import PublishError, publish_study

    credentials = credentials_from(cert, key, ca, saml)
    settings = trail_settings(data_dir, database_url, audit_url, credentials)
    with ClientTrail(settings, credentials.saml) as trail, trail.requesting(), \
            local_source(settings) as source:
        try:
            result = publish_study(source, study, repository_url=repository_url,
                                   credentials=credentials)
        except PublishError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    if result.up_to_date:
        typer.echo(f"up to date: manifest {result.kos_sop_instance_uid} of study {study} "
                   f"lists its {result.instances} instances")
        return
    replaced = f", replacing entry {result.replaced_entry_uuid}" if result.replaced_entry_uuid \
        else ""
    typer.echo(f"published manifest {result.kos_sop_instance_uid} of study {study}: "
               f"{result.instances} instances, entry {result.entry_uuid}{replaced}")
