"""The ASGI application: every actor's endpoint mounted on one Starlette app."""

from __future__ import annotations

import logging
from functools import partial
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from xds.config import WSDL_DIR, Settings
from xds.registry.context import Registry
from xds.clients.registration import RemoteRegistry
from xds.registry.iti42 import register_document_set
from xds.registry.service import registry_operations
from xds.repository.context import Register, Repository
from xds.repository.service import repository_operations
from xds.soap import Operation, SoapEndpoint, wsdl_files_app
from xds.store.blobs import FileBlobStore
from xds.store.db import migrate, open_engine

__all__ = ["build_app", "app_from_environment", "REGISTRY_PATH", "REPOSITORY_PATH"]

REGISTRY_PATH = "/xds/registry"
REPOSITORY_PATH = "/xds/repository"
log = logging.getLogger("xds.app")


def build_app(settings: Settings) -> Starlette:
    """The application for ``settings``; the database is migrated when it starts.

    ``settings.actors`` picks the endpoints: the registry at /xds/registry, the repository at
    /xds/repository (registering in-process, or at ``settings.registry_url`` when set).
    """
    engine = open_engine(settings)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    actors = {a.strip() for a in settings.actors.split(",") if a.strip()}
    unknown = actors - {"registry", "repository"}
    if unknown:
        raise ValueError(f"unknown actors {sorted(unknown)}; choose registry, repository")
    registry = Registry(engine=engine, settings=settings)
    routes: list[BaseRoute] = []
    if "registry" in actors:
        routes.append(Route(REGISTRY_PATH, _endpoint(
            settings, registry_operations(registry), "XDS.b_DocumentRegistry.wsdl", REGISTRY_PATH),
            methods=["GET", "POST"]))
    if "repository" in actors:
        register: Register
        if settings.registry_url:
            register = RemoteRegistry(settings.registry_url)
        elif "registry" in actors:
            register = partial(register_document_set, registry)
        else:
            raise ValueError("a repository without the registry in this process needs registry_url")
        repository = Repository(engine=engine, blobs=FileBlobStore(settings.blob_dir),
                                settings=settings, register=register)
        routes.append(Route(REPOSITORY_PATH, _endpoint(
            settings, repository_operations(repository), "XDS.b_DocumentRepository.wsdl",
            REPOSITORY_PATH), methods=["GET", "POST"]))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        migrate(engine)
        log.info("registry database ready at %s", engine.url.render_as_string(hide_password=True))
        yield
        engine.dispose()

    routes.append(Mount("/wsdl", app=wsdl_files_app))
    return Starlette(routes=routes, lifespan=lifespan)


def _endpoint(settings: Settings, operations: dict[str, Operation], wsdl: str,
              path: str) -> SoapEndpoint:
    return SoapEndpoint(
        operations, wsdl=WSDL_DIR / "iti" / "wsdl" / wsdl, service_path=path,
        max_envelope_bytes=settings.max_envelope_bytes, spool_dir=settings.spool_dir,
        public_url=settings.public_url)


def app_from_environment() -> Starlette:
    """``build_app`` on Settings from ``XDS_*`` variables: the factory each uvicorn worker calls."""
    return build_app(Settings.from_env())
