"""The ASGI application: every actor's endpoint mounted on one Starlette app."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from xds.config import WSDL_DIR, Settings
from xds.mpi.index import PatientIndex
from xds.mpi.mllp import start_mllp_server
from xds.mpi.notifier import run_notifier
from xds.mpi.service import pix_operations
from xds.registry.context import Registry
from xds.clients.registration import RemoteRegistry
from xds.registry.iti42 import register_document_set
from xds.registry.service import registry_operations
from xds.repository.context import Register, Repository
from xds.repository.service import repository_operations
from xds.soap import Operation, SoapEndpoint, wsdl_files_app
from xds.store.blobs import FileBlobStore
from xds.store.db import migrate, open_engine

__all__ = ["build_app", "app_from_environment", "REGISTRY_PATH", "REPOSITORY_PATH", "PIX_PATH"]

REGISTRY_PATH = "/xds/registry"
REPOSITORY_PATH = "/xds/repository"
PIX_PATH = "/pix"
log = logging.getLogger("xds.app")


def build_app(settings: Settings) -> Starlette:
    """The application for ``settings``; the database is migrated when it starts.

    ``settings.actors`` picks the endpoints: the registry at /xds/registry, the repository at
    /xds/repository (registering in-process, or at ``settings.registry_url`` when set).
    """
    engine = open_engine(settings)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    actors = {a.strip() for a in settings.actors.split(",") if a.strip()}
    unknown = actors - {"registry", "repository", "pix"}
    if unknown:
        raise ValueError(f"unknown actors {sorted(unknown)}; choose registry, repository, pix")
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
        async with _pix_listeners(index, settings):
            yield
        engine.dispose()

    index: PatientIndex | None = None
    if "pix" in actors:
        index = PatientIndex(engine, settings)
        routes.append(Route(PIX_PATH, _endpoint(
            settings, pix_operations(index, settings), "PIXManager.wsdl", PIX_PATH),
            methods=["GET", "POST"]))
    routes.append(Mount("/wsdl", app=wsdl_files_app))
    return Starlette(routes=routes, lifespan=lifespan)


@asynccontextmanager
async def _pix_listeners(index: PatientIndex | None, settings: Settings) -> AsyncIterator[None]:
    """The PIX Manager's MLLP listener (ITI-8, ITI-9) and notification sender (ITI-10, ITI-46)."""
    if index is None:
        yield
        return
    server = None
    if settings.mllp_port > 0:
        try:
            server = await start_mllp_server(index, settings)
            log.info("PIX Manager MLLP on %s:%d", settings.host, settings.mllp_port)
        except OSError as exc:
            # Another worker of this server, or another program, holds the port: the SOAP
            # endpoints keep working; the feed must go to whoever listens there.
            log.warning("MLLP port %d not opened: %s", settings.mllp_port, exc)
    # Notifications are queued only for configured subscribers; without any, nothing to poll.
    notifier = asyncio.create_task(run_notifier(index, settings)) if index.subscribers else None
    try:
        yield
    finally:
        if notifier is not None:
            notifier.cancel()
        if server is not None:
            server.close()
            await server.wait_closed()


def _endpoint(settings: Settings, operations: dict[str, Operation], wsdl: str,
              path: str) -> SoapEndpoint:
    return SoapEndpoint(
        operations, wsdl=WSDL_DIR / "iti" / "wsdl" / wsdl, service_path=path,
        max_envelope_bytes=settings.max_envelope_bytes, spool_dir=settings.spool_dir,
        public_url=settings.public_url)


def app_from_environment() -> Starlette:
    """``build_app`` on Settings from ``XDS_*`` variables: the factory each uvicorn worker calls."""
    return build_app(Settings.from_env())
