"""The ASGI application: every actor's endpoint mounted on one Starlette app."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from xds.config import WSDL_DIR, Settings
from xds.imaging.context import ImagingSource
from xds.fhir.app import fhir_routes
from xds.fhir.context import FHIR_PATH, FhirContext
from xds.imaging.archive import DicomwebArchive
from xds.imaging.dicomweb import dicomweb_app
from xds.imaging.publisher import run_publisher
from xds.imaging.service import imaging_operations
from xds.imaging.wado import wado_app
from xds.mpi.index import PatientIndex
from xds.mpi.mllp import start_mllp_server
from xds.mpi.notifier import run_notifier
from xds.mpi.service import pix_operations
from xds.ops import Metrics, RequestMetrics, health_routes, metrics_route
from xds.registry.context import Registry
from xds.clients.registration import RemoteRegistry
from xds.registry.iti42 import register_document_set
from xds.registry.service import registry_operations
from xds.repository.context import Register, Repository
from xds.repository.service import repository_operations
from xds.security.alerts import refusal_recorder
from xds.security.credentials import Credentials
from xds.security.tls import listener_context
from xds.security.xua import XuaPolicy
from xds.soap import Operation, SoapEndpoint, wsdl_files_app
from xds.store.blobs import BlobStore, open_blob_store
from xds.store.db import ensure_schema, open_engine

__all__ = [
    "build_app", "app_from_environment", "REGISTRY_PATH", "REPOSITORY_PATH", "PIX_PATH",
    "IMAGING_PATH", "WADO_PATH", "DICOMWEB_PATH", "FHIR_PATH", "LISTENERS", "listeners_of",
]

REGISTRY_PATH = "/xds/registry"
REPOSITORY_PATH = "/xds/repository"
PIX_PATH = "/pix"
IMAGING_PATH = "/xds/imaging"
WADO_PATH = "/wado"
DICOMWEB_PATH = "/dicomweb"
#: What ``settings.listeners`` may name: the HTTP app, the PIX Manager's MLLP port (ITI-8,
#: ITI-9), the imaging source's DICOM C-STORE SCP.
LISTENERS = ("http", "mllp", "dicom")
log = logging.getLogger("xds.app")


def listeners_of(settings: Settings) -> frozenset[str]:
    """The listeners ``settings.listeners`` names (comma-separated); ValueError for an unknown
    name or none at all."""
    names = frozenset(n.strip() for n in settings.listeners.split(",") if n.strip())
    unknown = names - set(LISTENERS)
    if unknown or not names:
        raise ValueError(f"unknown listeners {sorted(unknown)}; choose from {', '.join(LISTENERS)}"
                         if unknown else f"no listener named; choose from {', '.join(LISTENERS)}")
    return names


def build_app(settings: Settings) -> Starlette:
    """The application for ``settings``; when it starts, an empty database gets the schema and
    one at another revision stops it (``xds.store.db.SchemaMismatch``: ``xds db upgrade``).

    ``settings.actors`` picks the endpoints: the registry at /xds/registry, the repository at
    /xds/repository (registering in-process, or at ``settings.registry_url`` when set).
    ``settings.listeners`` picks what the lifespan also runs: "mllp" the PIX Manager's MLLP
    port, "dicom" the C-STORE SCP and the manifest publisher (``xds serve --workers N`` gives
    them to its first worker only).
    /healthz, /readyz and /metrics are always served.
    """
    listeners = listeners_of(settings)
    engine = open_engine(settings)
    xua = XuaPolicy.from_settings(settings, engine)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    actors = {a.strip() for a in settings.actors.split(",") if a.strip()}
    unknown = actors - {"registry", "repository", "pix", "imaging"}
    if unknown:
        raise ValueError(
            f"unknown actors {sorted(unknown)}; choose registry, repository, pix, imaging")
    registry = Registry(engine=engine, settings=settings)
    blobs = open_blob_store(settings)
    routes: list[BaseRoute] = []
    repository: Repository | None = None
    if "registry" in actors:
        routes.append(Route(REGISTRY_PATH, _endpoint(
            settings, xua, registry_operations(registry), "XDS.b_DocumentRegistry.wsdl",
            REGISTRY_PATH), methods=["GET", "POST"]))
    if "repository" in actors:
        register: Register
        if settings.registry_url:
            register = RemoteRegistry(settings.registry_url,
                                      verify=Credentials.of_settings(settings).verify())
        elif "registry" in actors:
            register = partial(register_document_set, registry)
        else:
            raise ValueError("a repository without the registry in this process needs registry_url")
        repository = Repository(engine=engine, blobs=blobs,
                                settings=settings, register=register)
        routes.append(Route(REPOSITORY_PATH, _endpoint(
            settings, xua, repository_operations(repository), "XDS.b_DocumentRepository.wsdl",
            REPOSITORY_PATH), methods=["GET", "POST"]))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        from xds.audit.sender import audit_running

        ensure_schema(engine)
        log.info("registry database ready at %s", engine.url.render_as_string(hide_password=True))
        # The audit sender runs in every process: its rows are claimed (SKIP LOCKED, or one
        # sender per SQLite file). So does the PIX notifier (rows leased by compare-and-set),
        # which wakes on the feeds of its own process.
        async with audit_running(engine, settings), \
                _pix_listeners(index, settings, mllp="mllp" in listeners), \
                _imaging_listeners(imaging if "dicom" in listeners else None, settings):
            yield
        engine.dispose()

    index: PatientIndex | None = None
    if "pix" in actors:
        index = PatientIndex(engine, settings)
        routes.append(Route(PIX_PATH, _endpoint(
            settings, xua, pix_operations(index, settings), "PIXManager.wsdl", PIX_PATH),
            methods=["GET", "POST"]))
    imaging: ImagingSource | None = None
    if "imaging" in actors:
        imaging = imaging_source(engine, settings, blobs)
        routes.append(Route(IMAGING_PATH, _endpoint(
            settings, xua, imaging_operations(imaging), "XDS-I.b_ImagingDocumentSource.wsdl",
            IMAGING_PATH), methods=["GET", "POST"]))
        routes.append(Route(WADO_PATH, wado_app(imaging), methods=["GET", "HEAD"]))
        routes.append(Mount(DICOMWEB_PATH, app=dicomweb_app(imaging)))
    routes += fhir_routes(FhirContext(
        engine=engine, settings=settings, registry=registry, repository=repository, index=index,
        imaging=imaging, blobs=blobs))
    routes.append(Mount("/wsdl", app=wsdl_files_app))
    metrics = Metrics(engine)
    routes += [*health_routes(engine, blobs), metrics_route(metrics)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(
        RequestMetrics, metrics=metrics, fhir_path=FHIR_PATH,
        prefixes={WADO_PATH: "WADO", DICOMWEB_PATH: "DICOMweb"})])


def imaging_source(engine: Engine, settings: Settings,
                   blobs: BlobStore | None = None) -> ImagingSource:
    """The Imaging Document Source of ``settings``: the blob store (``blobs``, else the one of
    ``settings.blob_url``), and the external archive when ``dicomweb_archive_url`` is set."""
    archive = DicomwebArchive(settings.dicomweb_archive_url,
                              verify=Credentials.of_settings(settings).verify()) \
        if settings.dicomweb_archive_url else None
    return ImagingSource(engine=engine, blobs=blobs or open_blob_store(settings),
                         settings=settings, archive=archive)


@asynccontextmanager
async def _imaging_listeners(source: ImagingSource | None,
                             settings: Settings) -> AsyncIterator[None]:
    """The DICOM C-STORE SCP (intake) and, with a quiet period, the manifest publisher: once
    per store, as two publishers could publish one study twice."""
    if source is None:
        yield
        return
    scp = None
    if settings.dicom_port > 0:
        from xds.dicom.scp import start_storage_scp  # pynetdicom (8 MB): only here

        try:
            scp = await asyncio.to_thread(
                start_storage_scp, source, ssl_context=listener_context(settings),
                on_refused=refusal_recorder(source.engine, settings))
            log.info("DICOM SCP %s on %s:%d", settings.dicom_ae_title, settings.host,
                     settings.dicom_port)
        except OSError as exc:
            log.warning("DICOM port %d not opened: %s", settings.dicom_port, exc)
    publisher = asyncio.create_task(run_publisher(source)) \
        if settings.publish_quiet_seconds > 0 else None
    try:
        yield
    finally:
        if publisher is not None:
            publisher.cancel()
        if scp is not None:
            await asyncio.to_thread(scp.shutdown)


@asynccontextmanager
async def _pix_listeners(index: PatientIndex | None, settings: Settings, *,
                         mllp: bool) -> AsyncIterator[None]:
    """The PIX Manager's MLLP listener (ITI-8, ITI-9), with ``mllp``, and notification sender
    (ITI-10, ITI-46)."""
    if index is None:
        yield
        return
    server = None
    if mllp and settings.mllp_port > 0:
        try:
            server = await start_mllp_server(
                index, settings, ssl_context=listener_context(settings),
                on_refused=refusal_recorder(index.engine, settings))
            log.info("PIX Manager MLLP on %s:%d", settings.host, settings.mllp_port)
        except OSError as exc:
            # Another program (or a second ``xds serve --listeners mllp``) holds the port: the
            # SOAP endpoints keep working; the feed must go to whoever listens there.
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


def _endpoint(settings: Settings, xua: XuaPolicy, operations: dict[str, Operation], wsdl: str,
              path: str) -> SoapEndpoint:
    return SoapEndpoint(
        operations, wsdl=WSDL_DIR / "iti" / "wsdl" / wsdl, service_path=path,
        max_envelope_bytes=settings.max_envelope_bytes, spool_dir=settings.spool_dir,
        public_url=settings.public_url, xua=xua)


def app_from_environment() -> Starlette:
    """``build_app`` on Settings from ``XDS_*`` variables: the factory each uvicorn worker calls."""
    return build_app(Settings.from_env())
