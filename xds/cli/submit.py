"""``xds submit``: a Document Source (ITI-41) that builds the metadata for files and sends them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
)

from xds.clients import source
from xds.cli.options import (
    AuditUrl, ClientCa, ClientCert, ClientKey, DatabaseUrl, DataDir, Saml, client_trail,
    credentials_from,
)
from xds.clients.source import (
    RegistryResponse, RepositoryFault, build_submission, parse_code, provide_and_register,
)
from xds.clients.steps import failure_text
from xds.ebrim.submission import build_submit_objects_request
from xds.model.errors import RegistryError, Severity
from xds.model.metadata import Author, Submission
from xds.model.values import Code
from xds.security.credentials import Credentials

if TYPE_CHECKING:
    from xds.audit.clients import ClientTrail

__all__ = ["submit", "transfer_progress", "print_errors", "REPOSITORY_URL", "Url", "ShowProgress"]

REPOSITORY_URL = "http://127.0.0.1:8080/xds/repository"
Url = Annotated[str, typer.Option(
    "--url", envvar="XDS_REPOSITORY_URL", help="Document Repository endpoint.")]
ShowProgress = Annotated[bool, typer.Option(
    "--progress", help="Show a progress bar even when stdout is not a terminal.")]
_CodeOption = Annotated[str | None, typer.Option(help="code^^codingScheme[^displayName]")]


@contextmanager
def transfer_progress(label: str, enabled: bool) -> Iterator[source.Progress | None]:
    """A rich progress bar (bytes, speed) on stderr, as a ``(done, total)`` callback; None
    when disabled."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def print_errors(errors: list[RegistryError]) -> None:
    """Each RegistryError as ``Error|Warning CODE: context [location]`` on stderr."""
    for err in errors:
        kind = "Warning" if err.severity == Severity.Warning else "Error"
        where = f" [{err.location}]" if err.location else ""
        typer.echo(f"{kind} {err.code}: {err.context}{where}", err=True)


def _code(option: str, value: str | None, default: Code) -> Code:
    if value is None:
        return default
    try:
        return parse_code(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _send(url: str, submission: Submission, files: list[Path], progress: bool,
          credentials: Credentials, trail: ClientTrail) -> RegistryResponse:
    """ITI-41 with a progress bar, audited on ``trail``; a failed exchange exits 1."""
    from xds.audit.clients import submission_event

    def audit(status: str = "", errors: list[RegistryError] | None = None,
              failure: str = "") -> None:
        trail.record(lambda: submission_event(
            trail.settings, url, build_submit_objects_request(submission), errors or [],
            status=status, failure=failure))

    try:
        with transfer_progress("ITI-41 upload", progress or sys.stdout.isatty()) as show:
            response = provide_and_register(url, submission, files, progress=show,
                                            credentials=credentials)
    except (RepositoryFault, httpx.HTTPError) as exc:
        audit(failure=failure_text(exc))
        typer.echo(f"ITI-41 to {url} failed: {exc}", err=True)
        raise typer.Exit(1) from None
    audit(str(response.status), response.errors)
    return response


def submit(
    files: Annotated[list[Path], typer.Argument(
        exists=True, dir_okay=False, readable=True, help="Documents to submit.")],
    patient: Annotated[str, typer.Option(
        "--patient", help="Patient id (CX), e.g. '123^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'.")],
    title: Annotated[str | None, typer.Option(help="Title of every document (default: file name).")
                     ] = None,
    mime_type: Annotated[str | None, typer.Option(
        help="mimeType of every document (default: guessed from the file name).")] = None,
    class_code: _CodeOption = None,
    type_code: _CodeOption = None,
    format_code: _CodeOption = None,
    practice_setting_code: _CodeOption = None,
    facility_type_code: _CodeOption = None,
    confidentiality_code: Annotated[list[str] | None, typer.Option(
        help="code^^codingScheme[^displayName]; repeat for several")] = None,
    content_type_code: _CodeOption = None,
    language_code: Annotated[str, typer.Option(help="RFC 5646 language of the documents.")
                             ] = "en-US",
    author_person: Annotated[str | None, typer.Option(
        help="Author (XCN), e.g. '^Welby^Marcus^^^Dr^MD'.")] = None,
    source_id: Annotated[str, typer.Option(
        envvar="XDS_SOURCE_ID", help="sourceId (OID) of this Document Source.")
    ] = source.DEFAULT_SOURCE_ID,
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
    """Provide and Register Document Set-b (ITI-41): build metadata for FILEs, send them (MTOM).

    Prints the SubmissionSet uniqueId and each document's uniqueId; exits 1 on Failure. With
    --audit-url the export is audited; see there for when the message is sent.
    """
    credentials = credentials_from(cert, key, ca, saml)
    confidentiality = [_code("--confidentiality-code", c, source.CONFIDENTIALITY_CODE)
                       for c in confidentiality_code or []] or [source.CONFIDENTIALITY_CODE]
    try:
        submission = build_submission(
            files, patient, source_id=source_id, title=title, mime_type=mime_type,
            class_code=_code("--class-code", class_code, source.CLASS_CODE),
            type_code=_code("--type-code", type_code, source.TYPE_CODE),
            format_code=_code("--format-code", format_code, source.FORMAT_CODE),
            practice_setting_code=_code("--practice-setting-code", practice_setting_code,
                                        source.PRACTICE_SETTING_CODE),
            healthcare_facility_type_code=_code("--facility-type-code", facility_type_code,
                                                source.HEALTHCARE_FACILITY_TYPE_CODE),
            confidentiality_codes=confidentiality,
            content_type_code=_code("--content-type-code", content_type_code,
                                    source.CONTENT_TYPE_CODE),
            language_code=language_code,
            author=Author(person=author_person) if author_person else None,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with client_trail(data_dir, database_url, audit_url, credentials) as trail:
        response = _send(url, submission, files, progress, credentials, trail)
    status = response.status.rsplit(":", 1)[-1]
    print_errors(response.errors)
    if not response.success:
        typer.echo(f"status: {status}", err=True)
        raise typer.Exit(1)
    typer.echo(f"status: {status}")
    typer.echo(f"submissionSet uniqueId: {submission.submission_set.unique_id}")
    for path, de in zip(files, submission.document_entries, strict=True):
        typer.echo(f"document uniqueId: {de.unique_id}  {de.mime_type}  {path}")
