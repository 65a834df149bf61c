"""``xds fhir``: read the FHIR facade from the command line (``xds fhir studies``: a patient's
ImagingStudy resources with their WADO-RS endpoints)."""

from __future__ import annotations

import json
import ssl
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from xds.cli.options import ClientCa, ClientCert, ClientKey, credentials_from
from xds.fhir.ids import domain_of_system, patient_resource_id
from xds.mpi.model import PatientIdentifier

__all__ = ["app", "patient_query"]

app = typer.Typer(no_args_is_help=True, help="FHIR client of this server's /fhir API.")
_ACCEPT = {"Accept": "application/fhir+json"}


def patient_query(patient: str) -> tuple[str, str]:
    """The search parameter naming ``patient``: a Patient id, ``urn:oid:<oid>|<value>`` or a CX
    ``value^^^&oid&ISO`` (BadParameter otherwise)."""
    if "|" in patient:
        system, _, value = patient.partition("|")
        if domain_of_system(system) is None or not value:
            raise typer.BadParameter(f"{patient!r}: give urn:oid:<oid>|<value>",
                                     param_hint="--patient")
        return "patient.identifier", f"urn:oid:{domain_of_system(system)}|{value}"
    if "^^^&" in patient:
        value, _, rest = patient.partition("^^^&")
        oid = rest.split("&")[0]
        resource_id = patient_resource_id(PatientIdentifier(oid, value)) if oid else None
        if not value or domain_of_system(oid) is None or resource_id is None:
            raise typer.BadParameter(f"{patient!r} is not a CX value^^^&OID&ISO",
                                     param_hint="--patient")
        return "patient", f"Patient/{resource_id}"
    return "patient", f"Patient/{patient}"


def _fail(response: httpx.Response) -> None:
    """Print the OperationOutcome diagnostics of a FHIR error and exit 1."""
    try:
        body = response.json()
        texts = [i.get("diagnostics", i.get("code", "")) for i in body.get("issue", [])]
    except (ValueError, AttributeError):
        texts = [response.text[:500]]
    for text in texts or [f"HTTP {response.status_code}"]:
        typer.echo(f"error ({response.status_code}): {text}", err=True)
    raise typer.Exit(1)


def _get(client: httpx.Client, url: str, params: Any = None) -> dict[str, Any]:
    response = client.get(url, params=params, headers=_ACCEPT)
    if response.status_code != 200:
        _fail(response)
    body: dict[str, Any] = response.json()
    return body


def _fetch(base: str, param: tuple[str, str], verify: ssl.SSLContext | bool = True
           ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every ImagingStudy of the search (following next links) and Endpoint id -> address."""
    studies: list[dict[str, Any]] = []
    addresses: dict[str, str] = {}
    with httpx.Client(timeout=60, verify=verify) as client:
        url: str | None = f"{base}/fhir/ImagingStudy"
        params: Any = [param, ("_include", "ImagingStudy:endpoint"), ("_sort", "-started")]
        while url:
            bundle = _get(client, url, params)
            for entry in bundle.get("entry", []):
                resource = entry.get("resource", {})
                if resource.get("resourceType") == "ImagingStudy":
                    studies.append(resource)
                elif resource.get("resourceType") == "Endpoint":
                    addresses[resource["id"]] = resource.get("address", "")
            url = next((link["url"] for link in bundle.get("link", [])
                        if link["relation"] == "next"), None)
            params = None
    return studies, addresses


def _endpoints(study: dict[str, Any], addresses: dict[str, str]) -> str:
    refs = [*study.get("endpoint", []),
            *(e for s in study.get("series", []) for e in s.get("endpoint", []))]
    ids = dict.fromkeys(r.get("reference", "").split("/")[-1] for r in refs)
    return "\n".join(addresses.get(i, i) for i in ids if i)


@app.command("studies")
def studies(
    patient: Annotated[str, typer.Option(
        "--patient", help="A Patient id, urn:oid:<oid>|<value>, or a CX value^^^&OID&ISO.")],
    url: Annotated[str, typer.Option("--url", envvar="XDS_URL",
                                     help="Base URL of the server.")] = "http://127.0.0.1:8080",
    as_json: Annotated[bool, typer.Option("--json", help="Print the resources as JSON.")] = False,
    cert: ClientCert = None,
    key: ClientKey = None,
    ca: ClientCa = None,
) -> None:
    """List the patient's imaging studies (ImagingStudy search) with their WADO-RS bases.

    Exits 1 on a FHIR error (its diagnostics are printed) or when the server is unreachable.
    """
    try:
        found, addresses = _fetch(url.rstrip("/"), patient_query(patient),
                                  credentials_from(cert, key, ca).verify())
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach {url}: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table("Study Instance UID", "started", "modalities", "series", "instances",
                  "endpoint")
    for study in found:
        table.add_row(study["id"], study.get("started", ""),
                      ",".join(m["code"] for m in study.get("modality", [])),
                      str(study.get("numberOfSeries", "")),
                      str(study.get("numberOfInstances", "")), _endpoints(study, addresses))
    Console().print(table)
    if not found:
        typer.echo("no imaging study found", err=True)
