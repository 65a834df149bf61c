"""``xds retrieve``: a Document Consumer's Retrieve Document Set (ITI-43), documents streamed to disk."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer

from xds.audit.clients import step_events
from xds.cli.options import (
    AuditUrl, ClientCa, ClientCert, ClientKey, DatabaseUrl, DataDir, Saml, client_trail,
    credentials_from, settings_from,
)
from xds.cli.submit import REPOSITORY_URL, ShowProgress, Url, print_errors, transfer_progress
from xds.clients.retrieve import DocumentRequest
from xds.clients.retrieve import retrieve as retrieve_documents
from xds.clients.source import RepositoryFault
from xds.clients.steps import Step, failure_text
from xds.ebrim.vocabulary import ResponseStatus

__all__ = ["retrieve"]


def retrieve(
    document: Annotated[list[str], typer.Option(
        "--document", help="DocumentUniqueId; repeat for several.")],
    out: Annotated[str, typer.Option(
        "--out", help="Output file (one document) or directory (files named by uniqueId).")],
    repository: Annotated[str | None, typer.Option(
        "--repository", help="RepositoryUniqueId (default: XDS_REPOSITORY_UNIQUE_ID or this "
        "installation's).")] = None,
    home: Annotated[str | None, typer.Option(
        "--home", help="homeCommunityId (urn:oid:...) of the documents, if they have one.")] = None,
    url: Url = REPOSITORY_URL,
    progress: ShowProgress = False,
    cert: ClientCert = None,
    key: ClientKey = None,
    ca: ClientCa = None,
    saml: Saml = None,
    audit_url: AuditUrl = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Retrieve Document Set (ITI-43): save each document, print its path, mimeType and size.

    Exits 1 unless every document came back; those that did are saved (PartialSuccess). With
    --audit-url the import is audited; see there for when the message is sent.
    """
    credentials = credentials_from(cert, key, ca, saml)
    repository_id = repository or settings_from().repository_unique_id
    requests = [DocumentRequest(repository_id, uid, home) for uid in document]
    # A trailing separator says "directory" even before it exists (Path() would drop it).
    as_file = len(requests) == 1 and not out.endswith(("/", os.sep)) and not Path(out).is_dir()
    step = Step("ITI-43", url, documents=tuple(requests))
    with client_trail(data_dir, database_url, audit_url, credentials) as trail:
        try:
            with transfer_progress("ITI-43 download", progress or sys.stdout.isatty()) as show:
                response = retrieve_documents(
                    url, requests, [Path(out)] if as_file else Path(out), progress=show,
                    credentials=credentials)
        except (RepositoryFault, httpx.HTTPError, OSError) as exc:
            failed = dataclasses.replace(step, failure=failure_text(exc))
            trail.record(lambda: step_events(trail.settings, failed))
            typer.echo(f"ITI-43 to {url} failed: {exc}", err=True)
            raise typer.Exit(1) from None
        done = dataclasses.replace(
            step, status=str(response.status), errors=tuple(response.errors),
            delivered=frozenset(d.document_unique_id for d in response.documents))
        trail.record(lambda: step_events(trail.settings, done))
    for doc in response.documents:
        typer.echo(f"{doc.path}  {doc.mime_type}  {doc.size} bytes  ({doc.document_unique_id})")
    print_errors(response.errors)
    if response.status != ResponseStatus.Success:
        typer.echo(f"status: {response.status.rsplit(':', 1)[-1]}", err=True)
        raise typer.Exit(1)
