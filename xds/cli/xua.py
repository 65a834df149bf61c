"""``xds xua``: a test identity provider issuing signed SAML 2.0 assertions (XUA, ITI-40)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xds.security.idp import DEFAULT_ISSUER, issue_assertion, parse_code

__all__ = ["app", "issue"]

app = typer.Typer(no_args_is_help=True,
                  help="XUA test identity provider: signed SAML 2.0 assertions.")

_CODE = "code^codeSystem^displayName (repeatable)"


@app.command("issue")
def issue(
    key: Annotated[Path, typer.Option(help="PEM private key of the identity provider.")],
    cert: Annotated[Path, typer.Option(help="PEM certificate of the identity provider "
                                            "(the server's --xua-idp-cert).")],
    subject: Annotated[str, typer.Option(help="The user: NameID and subject-id.")],
    audience: Annotated[str, typer.Option(help="The service the assertion is for "
                                               "(the server's --xua-audience).")],
    out: Annotated[Path, typer.Option(help="Where to write the assertion (XML).")],
    role: Annotated[list[str] | None, typer.Option(help=f"Subject role: {_CODE}.")] = None,
    purpose: Annotated[list[str] | None, typer.Option(help=f"Purpose of use: {_CODE}.")] = None,
    issuer: Annotated[str, typer.Option(help="Issuer of the assertion.")] = DEFAULT_ISSUER,
    name: Annotated[str, typer.Option(help="Human name (subject-id); default: the subject.")] = "",
    organization: Annotated[str, typer.Option(help="Organization name.")] = "",
    organization_id: Annotated[str, typer.Option(help="Organization id (urn:oid:...).")] = "",
    patient: Annotated[str, typer.Option(help="Patient id (CX) of resource-id.")] = "",
    minutes: Annotated[float, typer.Option(help="Validity from now, in minutes.")] = 5.0,
) -> None:
    """Write a signed assertion for SUBJECT, valid for MINUTES, to OUT."""
    try:
        roles = [parse_code(r) for r in role or []]
        purposes = [parse_code(p) for p in purpose or []]
        assertion = issue_assertion(
            key.read_bytes(), cert.read_bytes(), subject=subject, audience=audience,
            issuer=issuer, user_name=name, organization=organization,
            organization_id=organization_id, roles=roles, purposes=purposes, patient=patient,
            minutes=minutes)
    except (OSError, ValueError) as exc:
        typer.echo(f"xds xua issue: {exc}", err=True)
        raise typer.Exit(1) from None
    out.write_bytes(assertion)
    typer.echo(f"assertion for {subject} (audience {audience}, {minutes:g} minutes): {out}")
