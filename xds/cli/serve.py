"""``xds serve``: run every server actor on one port."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from xds.cli.options import DatabaseUrl, DataDir, settings_from

__all__ = ["serve"]


def serve(
    host: Annotated[str | None, typer.Option(envvar="XDS_HOST", help="Listen address [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(envvar="XDS_PORT", help="Listen port [8080].")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the Document Registry (ITI-42, ITI-18) at /xds/registry."""
    from xds.app import build_app

    settings = settings_from(host=host, port=port, data_dir=data_dir, database_url=database_url)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(settings)
    typer.echo(f"xds: registry at http://{settings.host}:{settings.port}/xds/registry "
               f"(data in {settings.data_dir}, database {settings.effective_database_url.split('@')[-1]})")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                proxy_headers=True)
