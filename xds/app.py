"""The ASGI application: every actor's endpoint mounted on one Starlette app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from xds.config import WSDL_DIR, Settings
from xds.registry.context import Registry
from xds.registry.service import registry_operations
from xds.soap import SoapEndpoint, wsdl_files_app
from xds.store.db import migrate, open_engine

__all__ = ["build_app", "app_from_environment", "REGISTRY_PATH"]

REGISTRY_PATH = "/xds/registry"
log = logging.getLogger("xds.app")


def build_app(settings: Settings) -> Starlette:
    """The application for ``settings``; the database is migrated when it starts."""
    engine = open_engine(settings)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    registry = Registry(engine=engine, settings=settings)
    registry_endpoint = SoapEndpoint(
        registry_operations(registry),
        wsdl=WSDL_DIR / "iti" / "wsdl" / "XDS.b_DocumentRegistry.wsdl",
        service_path=REGISTRY_PATH,
        max_envelope_bytes=settings.max_envelope_bytes,
        spool_dir=settings.spool_dir,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        migrate(engine)
        log.info("registry database ready at %s", engine.url.render_as_string(hide_password=True))
        yield
        engine.dispose()

    routes = [
        Route(REGISTRY_PATH, registry_endpoint, methods=["GET", "POST"]),
        Mount("/wsdl", app=wsdl_files_app),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_environment() -> Starlette:
    """``build_app`` on Settings from ``XDS_*`` variables: the factory each uvicorn worker calls."""
    return build_app(Settings.from_env())
