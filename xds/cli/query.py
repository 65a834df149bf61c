"""``xds query``: a Document Consumer (ITI-18) over the official WSDL with zeep."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Query a Document Registry (ITI-18).")
