"""The ``xds`` command line (Typer): one module per command group."""

from __future__ import annotations

import typer

from xds.cli import patient, query, retrieve, serve, submit
from xds.cli import fetch, pix
from xds.cli import imaging
from xds.cli import fhir
from xds.cli import publish as publish_cli
from xds.cli import audit, certs, xua
from xds.cli import db
from xds.cli import blobs

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="IHE XDS.b / XDS-I.b document and image sharing.")
app.command("serve")(serve.serve)
app.add_typer(patient.app, name="patient")
app.add_typer(pix.app, name="pix")
app.add_typer(query.app, name="query")
app.command("submit")(submit.submit)
app.command("retrieve")(retrieve.retrieve)
app.command("publish")(publish_cli.publish)
app.command("import-dicom")(imaging.import_dicom)
app.add_typer(fetch.app, name="imaging")
app.add_typer(fhir.app, name="fhir")
app.add_typer(certs.app, name="certs")
app.add_typer(audit.app, name="audit")
app.add_typer(xua.app, name="xua")
app.add_typer(db.app, name="db")
app.add_typer(blobs.app, name="blobs")


def main() -> None:
    """Entry point of the ``xds`` console script."""
    app()
