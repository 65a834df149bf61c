"""``xds query``: a Document Consumer (ITI-18) over the official WSDL; prints a table or XML."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NamedTuple

import httpx
import typer
from lxml import etree
from rich.console import Console
from rich.table import Table

from xds.cli.options import (
    AuditUrl, ClientCa, ClientCert, ClientKey, DatabaseUrl, DataDir, Saml, client_trail,
    credentials_from,
)
from xds.audit.clients import step_events
from xds.clients.consumer import DocumentConsumer, RegistryFault, quote, quote_list
from xds.ebrim.association import parse_association
from xds.ebrim.documententry import parse_document_entry
from xds.ebrim.folder import parse_folder
from xds.ebrim.rim import RIM
from xds.ebrim.submissionset import parse_submission_set
from xds.ebrim.vocabulary import FD, NS_RS, SS, ReturnType, Status, StoredQuery
from xds.clients.steps import Step, answered, failure_text
from xds.security.credentials import Credentials

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Query a Document Registry (ITI-18 Registry Stored Query).")

Url = Annotated[str, typer.Option(
    "--url", envvar="XDS_REGISTRY_URL", help="Registry endpoint.")]
AsXml = Annotated[bool, typer.Option("--xml", help="Print the AdhocQueryResponse XML.")]
ObjectRefs = Annotated[bool, typer.Option("--object-ref", help="Ask for ObjectRefs (ids only).")]
Statuses = Annotated[list[str] | None, typer.Option(
    "--status", help="Approved and/or Deprecated (default Approved).")]
_DEFAULT_URL = "http://127.0.0.1:8080/xds/registry"


def _statuses(values: Sequence[str] | None) -> str:
    chosen = [Status[v.capitalize()].value for v in (values or ["Approved"])]
    return quote_list(chosen)


class Store(NamedTuple):
    """The audit options of a query: where the outbox is, where it goes."""

    data_dir: Path | None
    database_url: str | None
    audit_url: str | None


def _run(url: str, query: StoredQuery, params: list[tuple[str, list[str]]], xml: bool,
         object_ref: bool, store: Store, credentials: Credentials) -> None:
    consumer = DocumentConsumer(url, credentials=credentials)
    with client_trail(*store, credentials) as trail:
        def audit(step: Step) -> None:
            trail.record(lambda: step_events(trail.settings, step))

        try:
            response = consumer.stored_query(
                query, params, ReturnType.ObjectRef if object_ref else ReturnType.LeafClass)
        except (RegistryFault, httpx.HTTPError) as exc:
            audit(Step("ITI-18", url, query=consumer.last_request, failure=failure_text(exc)))
            reason = f"SOAP fault: {exc}" if isinstance(exc, RegistryFault) \
                else f"ITI-18 to {url} failed: {exc}"
            typer.echo(reason, err=True)
            raise typer.Exit(1) from None
        audit(answered(Step("ITI-18", url, query=consumer.last_request), response))
    if xml:
        typer.echo(etree.tostring(response, pretty_print=True, encoding="unicode"))
    else:
        _print(response)
    if response.get("status", "").endswith(":Failure"):
        raise typer.Exit(1)


def _print(response: etree._Element) -> None:
    # Piped output keeps whole ids on one line rather than folding them to a guessed width.
    console = Console(width=None if sys.stdout.isatty() else 320)
    console.print(f"status: {response.get('status', '').rsplit(':', 1)[-1]}")
    for err in response.iterfind(f"{{{NS_RS}}}RegistryErrorList/{{{NS_RS}}}RegistryError"):
        console.print(f"[red]{err.get('severity', '').rsplit(':', 1)[-1]}[/red] "
                      f"{err.get('errorCode')}: {err.get('codeContext')}")
    objects = response.find(f"{RIM}RegistryObjectList")
    if objects is None:
        return
    table = Table("type", "entryUUID", "uniqueId / association", "status", "details")
    for el in objects:
        table.add_row(*_row(el))
    console.print(table)


def _row(el: etree._Element) -> tuple[str, str, str, str, str]:
    status = (el.get("status") or "").rsplit(":", 1)[-1]
    if el.tag == f"{RIM}ExtrinsicObject":
        de = parse_document_entry(el)
        title = de.title.value if de.title else ""
        klass = de.class_code.display.value if de.class_code and de.class_code.display else ""
        return ("DocumentEntry", de.entry_uuid, de.unique_id or "", status,
                f"{de.creation_time or ''} {de.mime_type or ''} {klass} {title}".strip())
    if el.tag == f"{RIM}RegistryPackage":
        nodes = {c.get("classificationNode") or "" for c in el.iterfind(f"{RIM}Classification")}
        if FD.classificationNode in nodes:
            fd = parse_folder(el, nodes)
            return ("Folder", fd.entry_uuid, fd.unique_id or "", status,
                    f"{fd.last_update_time or ''} {fd.title.value if fd.title else ''}".strip())
        if SS.classificationNode in nodes:
            ss = parse_submission_set(el, nodes)
            return ("SubmissionSet", ss.entry_uuid, ss.unique_id or "", status,
                    f"{ss.submission_time or ''} source {ss.source_id or ''}")
    if el.tag == f"{RIM}Association":
        a = parse_association(el)
        return ("Association", a.entry_uuid, a.association_type.rsplit(":", 1)[-1], status,
                f"{a.source_object} -> {a.target_object}")
    return (etree.QName(el).localname, el.get("id") or "", "", status, "")


@app.command("find-documents")
def find_documents(
    patient_id: Annotated[str, typer.Argument(help="CX, e.g. '123^^^&1.2.3&ISO'")],
    status: Statuses = None,
    class_code: Annotated[list[str] | None, typer.Option(help="code^^scheme (OR)")] = None,
    type_code: Annotated[list[str] | None, typer.Option(help="code^^scheme (OR)")] = None,
    format_code: Annotated[list[str] | None, typer.Option(help="code^^scheme (OR)")] = None,
    creation_from: Annotated[str | None, typer.Option(help="DTM, inclusive")] = None,
    creation_to: Annotated[str | None, typer.Option(help="DTM, exclusive")] = None,
    url: Url = _DEFAULT_URL, xml: AsXml = False, object_ref: ObjectRefs = False,
    cert: ClientCert = None, key: ClientKey = None, ca: ClientCa = None, saml: Saml = None,
    audit_url: AuditUrl = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """FindDocuments: a patient's DocumentEntries, narrowed by codes and times."""
    params = [("$XDSDocumentEntryPatientId", [quote(patient_id)]),
              ("$XDSDocumentEntryStatus", [_statuses(status)])]
    for name, codes in (("$XDSDocumentEntryClassCode", class_code),
                        ("$XDSDocumentEntryTypeCode", type_code),
                        ("$XDSDocumentEntryFormatCode", format_code)):
        if codes:
            params.append((name, [quote_list(codes)]))
    if creation_from:
        params.append(("$XDSDocumentEntryCreationTimeFrom", [creation_from]))
    if creation_to:
        params.append(("$XDSDocumentEntryCreationTimeTo", [creation_to]))
    _run(url, StoredQuery.FindDocuments, params, xml, object_ref,
         Store(data_dir, database_url, audit_url), credentials_from(cert, key, ca, saml))


@app.command("find-submission-sets")
def find_submission_sets(
    patient_id: Annotated[str, typer.Argument(help="CX")],
    url: Url = _DEFAULT_URL, xml: AsXml = False, object_ref: ObjectRefs = False,
    cert: ClientCert = None, key: ClientKey = None, ca: ClientCa = None, saml: Saml = None,
    audit_url: AuditUrl = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """FindSubmissionSets: a patient's SubmissionSets."""
    params = [("$XDSSubmissionSetPatientId", [quote(patient_id)]),
              ("$XDSSubmissionSetStatus", [_statuses(None)])]
    _run(url, StoredQuery.FindSubmissionSets, params, xml, object_ref,
         Store(data_dir, database_url, audit_url), credentials_from(cert, key, ca, saml))


@app.command("find-folders")
def find_folders(
    patient_id: Annotated[str, typer.Argument(help="CX")], status: Statuses = None,
    url: Url = _DEFAULT_URL, xml: AsXml = False, object_ref: ObjectRefs = False,
    cert: ClientCert = None, key: ClientKey = None, ca: ClientCa = None, saml: Saml = None,
    audit_url: AuditUrl = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """FindFolders: a patient's Folders."""
    params = [("$XDSFolderPatientId", [quote(patient_id)]),
              ("$XDSFolderStatus", [_statuses(status)])]
    _run(url, StoredQuery.FindFolders, params, xml, object_ref,
         Store(data_dir, database_url, audit_url), credentials_from(cert, key, ca, saml))


@app.command("get-all")
def get_all(
    patient_id: Annotated[str, typer.Argument(help="CX")],
    url: Url = _DEFAULT_URL, xml: AsXml = False, object_ref: ObjectRefs = False,
    cert: ClientCert = None, key: ClientKey = None, ca: ClientCa = None, saml: Saml = None,
    audit_url: AuditUrl = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """GetAll: every SubmissionSet, DocumentEntry, Folder and Association of a patient."""
    both = _statuses(["Approved", "Deprecated"])
    params = [("$patientId", [quote(patient_id)]), ("$XDSDocumentEntryStatus", [both]),
              ("$XDSSubmissionSetStatus", [both]), ("$XDSFolderStatus", [both])]
    _run(url, StoredQuery.GetAll, params, xml, object_ref,
         Store(data_dir, database_url, audit_url), credentials_from(cert, key, ca, saml))


@app.command("get-documents")
def get_documents(
    ids: Annotated[list[str], typer.Argument(help="entryUUIDs (urn:uuid:...) or uniqueIds")],
    url: Url = _DEFAULT_URL, xml: AsXml = False, object_ref: ObjectRefs = False,
    cert: ClientCert = None, key: ClientKey = None, ca: ClientCa = None, saml: Saml = None,
    audit_url: AuditUrl = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """GetDocuments: DocumentEntries by entryUUID or by uniqueId."""
    by_uuid = all(i.startswith("urn:uuid:") for i in ids)
    name = "$XDSDocumentEntryEntryUUID" if by_uuid else "$XDSDocumentEntryUniqueId"
    _run(url, StoredQuery.GetDocuments, [(name, [quote_list(ids)])], xml, object_ref,
         Store(data_dir, database_url, audit_url), credentials_from(cert, key, ca, saml))


@app.command("run")
def run(
    query: Annotated[str, typer.Argument(help="Stored query name (FindDocuments, GetAll, ...) or id")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="NAME=VALUE, value encoded as on the wire, e.g. "
        "-p \"\\$XDSDocumentEntryPatientId='1^^^&1.2&ISO'\"; repeat a NAME for AND")] = None,
    url: Url = _DEFAULT_URL, xml: AsXml = False, object_ref: ObjectRefs = False,
    cert: ClientCert = None, key: ClientKey = None, ca: ClientCa = None, saml: Saml = None,
    audit_url: AuditUrl = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """Any stored query with raw parameters."""
    try:
        query_id = StoredQuery[query] if query in StoredQuery.__members__ else StoredQuery(query)
    except ValueError as exc:
        typer.echo(f"unknown stored query {query!r}; one of: {', '.join(StoredQuery.__members__)}",
                   err=True)
        raise typer.Exit(2) from exc
    params: list[tuple[str, list[str]]] = []
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep:
            typer.echo(f"--param {item!r}: expected NAME=VALUE", err=True)
            raise typer.Exit(2)
        params.append((name if name.startswith("$") else "$" + name, [value]))
    _run(url, query_id, params, xml, object_ref,
         Store(data_dir, database_url, audit_url), credentials_from(cert, key, ca, saml))
