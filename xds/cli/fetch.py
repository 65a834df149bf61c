"""``xds imaging fetch``: the Imaging Document Consumer, from a patient, study or accession to
Part-10 files on disk (ITI-18, ITI-43, RAD-69)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from xds.audit.clients import step_events
from xds.cli.options import (
    AuditUrl, ClientCa, ClientCert, ClientKey, DatabaseUrl, DataDir, Saml, client_trail,
    credentials_from, settings_from,
)
from xds.cli.submit import ShowProgress, print_errors, transfer_progress
from xds.clients.consumer import RegistryFault
from xds.clients.imaging import DEFAULT_SYNTAXES, fetch as fetch_images
from xds.clients.source import RepositoryFault, parse_code
from xds.clients.steps import Step

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Imaging Document Consumer (XDS-I.b).")


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        uid, sep, url = value.partition("=")
        if not sep or not uid or not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"{value!r} is not UID=http(s)://...", param_hint=option)
        pairs[uid] = url
    return pairs


@app.command("fetch")
def fetch(
    out: Annotated[Path, typer.Option("--out", help="Directory for the Part-10 files "
                                      "(<out>/<study>/<series>/<sop>.dcm).")],
    patient: Annotated[str | None, typer.Option(
        "--patient", help="Affinity-domain patient id, id^^^&OID&ISO: FindDocuments, or with "
        "--study/--accession FindDocumentsByReferenceId. Without it, ITI-51 over all patients.")
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study Instance UID.")] = None,
    accession: Annotated[str | None, typer.Option("--accession", help="Accession number.")] = None,
    registry_url: Annotated[str | None, typer.Option(
        "--registry-url", envvar="XDS_REGISTRY_URL", help="Registry ITI-18 endpoint.")] = None,
    repository: Annotated[list[str] | None, typer.Option(
        "--repository", help="repositoryUniqueId=ITI-43 URL of a Document Repository; repeat "
        "(default: this installation's).")] = None,
    source: Annotated[list[str] | None, typer.Option(
        "--source", help="Imaging Document Source repositoryUniqueId (KOS RetrieveLocationUID)"
        "=RAD-69 URL; repeat (default: this installation's).")] = None,
    transfer_syntax: Annotated[list[str] | None, typer.Option(
        "--transfer-syntax", help="Acceptable transfer syntax UID; repeat (default Explicit "
        "and Implicit VR Little Endian).")] = None,
    progress: ShowProgress = False,
    cert: ClientCert = None,
    key: ClientKey = None,
    ca: ClientCa = None,
    saml: Saml = None,
    audit_url: AuditUrl = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Find the manifests, read them, retrieve every referenced instance; print a summary.

    Exits 1 when no manifest was found or an instance could not be retrieved. With
    --audit-url every ITI-18, ITI-43 and RAD-69 exchange is audited; see there for when the
    messages are sent.
    """
    if not (patient or study or accession):
        raise typer.BadParameter("give --patient, --study or --accession")
    credentials = credentials_from(cert, key, ca, saml)
    settings = settings_from()
    base = settings.base_url
    registry = registry_url or base + "/xds/registry"
    repositories = {settings.repository_unique_id: base + "/xds/repository"}
    repositories.update(_pairs(repository, "--repository"))
    sources = {settings.imaging_source_unique_id: base + "/xds/imaging"}
    sources.update(_pairs(source, "--source"))
    console = Console(stderr=True)
    with client_trail(data_dir, database_url, audit_url, credentials) as trail:
        def audit(step: Step) -> None:
            trail.record(lambda: step_events(trail.settings, step))

        try:
            with transfer_progress("RAD-69 download", progress or sys.stdout.isatty()) as show:
                result = fetch_images(
                    registry, patient, out, sources=sources, repositories=repositories,
                    study_uid=study, accession=accession,
                    transfer_syntaxes=transfer_syntax or DEFAULT_SYNTAXES, progress=show,
                    class_code=parse_code(settings.imaging_class_code).key,
                    on_manifest=lambda uid, n: console.print(
                        f"manifest for study {uid}: {n} instances"),
                    credentials=credentials, on_step=audit)
        except (RegistryFault, RepositoryFault, httpx.HTTPError, OSError, ValueError) as exc:
            typer.echo(f"imaging fetch failed: {exc}", err=True)
            raise typer.Exit(1) from None
    table = Table("studies", "manifests", "instances saved", "MB", "not retrieved")
    table.add_row(str(len(result.studies)), str(len(result.manifests)), str(len(result.files)),
                  f"{result.bytes / 1e6:.1f}", str(len(result.missing) + len(result.errors)))
    Console().print(table)
    print_errors(result.errors)
    for sop in result.missing[:10]:
        typer.echo(f"no RAD-69 URL for the source of {sop} (use --source UID=URL)", err=True)
    if not result.manifests:
        typer.echo("no imaging manifest found", err=True)
        raise typer.Exit(1)
    if result.errors or result.missing:
        raise typer.Exit(1)
