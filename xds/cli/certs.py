"""``xds certs``: a CA with server and client certificates for TLS on every port (ITI-19)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xds.security.certs import init_certs

__all__ = ["app", "init"]

app = typer.Typer(no_args_is_help=True,
                  help="Certificates for TLS (ATNA Secure Node): a CA, a server and a client.")


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the PEM files (created).")],
    host: Annotated[list[str] | None, typer.Option(
        "--host", help="DNS name or IP address of the server certificate (repeatable) "
                       "[localhost, 127.0.0.1].")] = None,
    days: Annotated[int, typer.Option(help="Validity of the server and client certificates.")] = 825,
) -> None:
    """Write a new CA (ca.pem, ca-key.pem), a server certificate for ``--host`` names
    (server.pem, server-key.pem) and a client certificate (client.pem, client-key.pem).
    Refuses to overwrite a folder that already holds a CA."""
    hosts = host or ["localhost", "127.0.0.1"]
    try:
        paths = init_certs(directory, hosts, days=days)
    except FileExistsError as exc:
        typer.echo(f"xds certs init: {exc}", err=True)
        raise typer.Exit(1) from None
    for role, (cert, key) in paths.items():
        typer.echo(f"{role}: {cert} (key {key})")
    ca = paths["ca"][0]
    server_cert, server_key = paths["server"]
    client_cert, client_key = paths["client"]
    typer.echo(f"server names: {', '.join(hosts)}")
    typer.echo(f"serve with:  xds serve --tls-cert {server_cert} --tls-key {server_key} "
               f"--tls-ca {ca} --client-auth required "
               f"--client-cert {client_cert} --client-key {client_key}")
    typer.echo(f"clients use: --cert {client_cert} --key {client_key} --ca {ca}")
