"""PLACEHOLDER (helper C replaces): WADO-URI."""
from __future__ import annotations
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp
from xds.imaging.context import ImagingSource


def wado_app(source: ImagingSource) -> ASGIApp:
    return PlainTextResponse("not yet", 501)
