"""``xds serve``: run every server actor on one port, in one or N worker processes, or only
some of its listeners (HTTP, MLLP, DICOM)."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import shutil
import signal
import socket
from typing import Annotated, Any

import typer
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from xds.cli.options import BlobUrl, DatabaseUrl, DataDir, blob_store, settings_from
from xds.config import Settings
from xds.security.accept import tls_protocol_class
from xds.security.tls import listener_context

__all__ = ["serve"]

log = logging.getLogger("xds.serve")

#: Settings the workers of ``--workers N`` read from the environment they inherit.
_PASSED_ON = ("tls_cert", "tls_key", "tls_ca", "tls_client_auth", "tls_legacy", "client_cert",
              "client_key", "client_ca", "audit_url", "xua", "xua_idp_certs", "xua_audience",
              "blob_url")


def serve(
    host: Annotated[str | None, typer.Option(envvar="XDS_HOST", help="Listen address [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(envvar="XDS_PORT", help="Listen port [8080].")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    actors: Annotated[str | None, typer.Option(
        envvar="XDS_ACTORS",
        help="Actors to serve, comma-separated: registry, repository, pix, imaging (default: all).")] = None,
    registry_url: Annotated[str | None, typer.Option(
        envvar="XDS_REGISTRY_URL",
        help="Registry the repository sends ITI-42 to (default: the one in this process).")] = None,
    repository_unique_id: Annotated[str | None, typer.Option(
        envvar="XDS_REPOSITORY_UNIQUE_ID", help="repositoryUniqueId (OID) of this repository.")] = None,
    mllp_port: Annotated[int | None, typer.Option(
        envvar="XDS_MLLP_PORT", help="MLLP port of the PIX Manager (ITI-8, ITI-9); 0 = off [2575].")] = None,
    dicom_port: Annotated[int | None, typer.Option(
        envvar="XDS_DICOM_PORT",
        help="Port of the imaging source's DICOM C-STORE/C-ECHO SCP; 0 = off [11112].")] = None,
    dicom_ae_title: Annotated[str | None, typer.Option(
        envvar="XDS_DICOM_AE_TITLE", help="AE title of the DICOM SCP (the called AE) [XDS_IDS].")] = None,
    publish_quiet_seconds: Annotated[float | None, typer.Option(
        envvar="XDS_PUBLISH_QUIET_SECONDS",
        help="Publish a study's manifest after this many seconds without new instances; "
             "0 = only on 'xds publish' [0].")] = None,
    workers: Annotated[int, typer.Option(
        envvar="XDS_WORKERS", help="Worker processes; they share nothing but the store and "
                                   "the HTTP port (the MLLP and DICOM ports are in the first).")] = 1,
    listeners: Annotated[str | None, typer.Option(
        envvar="XDS_LISTENERS",
        help="What this process listens with, comma-separated: http (the HTTP app), mllp (PIX "
             "Manager ITI-8/ITI-9), dicom (C-STORE SCP and manifest publisher); e.g. "
             "'mllp,dicom' on one machine and 'http' on others [http,mllp,dicom].")] = None,
    blob_url: BlobUrl = None,
    tls_cert: Annotated[str | None, typer.Option(
        envvar="XDS_TLS_CERT", help="PEM certificate chain: turns TLS on for the HTTP, MLLP "
                                    "and DICOM ports.")] = None,
    tls_key: Annotated[str | None, typer.Option(
        envvar="XDS_TLS_KEY", help="PEM private key of --tls-cert.")] = None,
    tls_ca: Annotated[str | None, typer.Option(
        envvar="XDS_TLS_CA", help="PEM bundle of the CAs client certificates must chain to.")] = None,
    client_auth: Annotated[str | None, typer.Option(
        envvar="XDS_TLS_CLIENT_AUTH",
        help="Client certificates on the TLS ports: required, optional or none (default: required).")] = None,
    tls_legacy: Annotated[bool | None, typer.Option(
        "--tls-legacy", envvar="XDS_TLS_LEGACY",
        help="Also offer TLS_RSA_WITH_AES_128_CBC_SHA for legacy ATNA peers.")] = None,
    client_cert: Annotated[str | None, typer.Option(
        envvar="XDS_CLIENT_CERT", help="PEM certificate this node presents to the servers it "
                                       "calls (registry, PIX consumers, repository).")] = None,
    client_key: Annotated[str | None, typer.Option(
        envvar="XDS_CLIENT_KEY", help="PEM private key of --client-cert.")] = None,
    client_ca: Annotated[str | None, typer.Option(
        envvar="XDS_CLIENT_CA", help="PEM CA bundle servers are verified with "
                                     "(default: --tls-ca).")] = None,
    audit_url: Annotated[str | None, typer.Option(
        envvar="XDS_AUDIT_URL", help="Audit Record Repository: syslog+tls://host:6514, "
                                     "syslog+tcp://, syslog+udp:// (default: local only).")] = None,
    xua: Annotated[str | None, typer.Option(
        envvar="XDS_XUA",
        help="XUA on the SOAP endpoints: required, optional or off (default: off).")] = None,
    xua_idp_cert: Annotated[list[str] | None, typer.Option(
        "--xua-idp-cert", help="PEM certificate of a trusted identity provider (repeatable; "
                               "XDS_XUA_IDP_CERTS: comma-separated).")] = None,
    xua_audience: Annotated[str | None, typer.Option(
        envvar="XDS_XUA_AUDIENCE", help="Audience URI an assertion must name.")] = None,
) -> None:
    """Serve the Document Registry (ITI-42, ITI-18) at /xds/registry, the Document Repository
    (ITI-41, ITI-43) at /xds/repository, the PIX Manager (ITI-44/45 at /pix, ITI-8/9 on MLLP) and
    the Imaging Document Source (RAD-69 at /xds/imaging, WADO, DICOMweb, a C-STORE SCP), with
    /healthz, /readyz and /metrics. An empty database gets the schema; one at another revision
    is refused (exit 2): 'xds db upgrade' first."""
    from xds.app import build_app, listeners_of

    settings = settings_from(host=host, port=port, data_dir=data_dir, database_url=database_url,
                             actors=actors, registry_url=registry_url,
                             repository_unique_id=repository_unique_id, mllp_port=mllp_port,
                             dicom_port=dicom_port, dicom_ae_title=dicom_ae_title,
                             publish_quiet_seconds=publish_quiet_seconds, tls_cert=tls_cert,
                             tls_key=tls_key, tls_ca=tls_ca, tls_client_auth=client_auth,
                             tls_legacy=None if tls_legacy is None else
                             ("yes" if tls_legacy else "no"),
                             client_cert=client_cert, client_key=client_key,
                             client_ca=client_ca, audit_url=audit_url, xua=xua,
                             xua_idp_certs=",".join(xua_idp_cert) if xua_idp_cert else None,
                             xua_audience=xua_audience, listeners=listeners, blob_url=blob_url)
    try:
        names = listeners_of(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listeners") from None
    blob_store(settings)  # a bad --blob-url stops us here (and S3's model loads before a fork)
    _cap_malloc_arenas()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    database = settings.effective_database_url.split("@")[-1]
    try:
        tls = listener_context(settings)  # a bad certificate stops us before anything starts
    except (ValueError, OSError) as exc:
        typer.echo(f"xds serve: TLS: {exc}", err=True)
        raise typer.Exit(2) from None
    # Before any worker starts: they would all race to create the schema of an empty database.
    _check_schema(settings)
    typer.echo(f"xds: {', '.join(_served(settings, names, tls is not None))} (data in "
               f"{settings.data_dir}, database {database}, "
               f"{workers if 'http' in names else 1} process(es))")
    if "http" not in names:
        if workers > 1:
            typer.echo("xds serve: --workers ignored without the http listener", err=True)
        asyncio.run(_listen_only(build_app(settings)))
        return
    if workers <= 1:
        uvicorn.Server(_config(build_app(settings), settings, host=settings.host,
                               port=settings.port)).run()
        return
    # Hand the resolved settings to the workers through the environment they inherit.
    os.environ.update({"XDS_DATA_DIR": str(settings.data_dir),
                       "XDS_DATABASE_URL": settings.database_url, "XDS_ACTORS": settings.actors,
                       "XDS_REGISTRY_URL": settings.registry_url,
                       "XDS_REPOSITORY_UNIQUE_ID": settings.repository_unique_id,
                       "XDS_MLLP_PORT": str(settings.mllp_port),
                       "XDS_DICOM_PORT": str(settings.dicom_port),
                       "XDS_DICOM_AE_TITLE": settings.dicom_ae_title,
                       "XDS_PUBLISH_QUIET_SECONDS": str(settings.publish_quiet_seconds),
                       **{"XDS_" + name.upper(): str(getattr(settings, name))
                          for name in _PASSED_ON}})
    _run_workers(settings, workers)


def _check_schema(settings: Settings) -> None:
    """Create the schema of an empty database; exit 2 on one at another revision, 1 when the
    database does not answer."""
    from sqlalchemy.exc import SQLAlchemyError

    from xds.store.db import SchemaMismatch, ensure_schema, open_engine

    engine = open_engine(settings)
    try:
        ensure_schema(engine)
    except SchemaMismatch as exc:
        typer.echo(f"xds serve: {exc}", err=True)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        typer.echo(f"xds serve: database: {str(getattr(exc, 'orig', None) or exc).strip()}",
                   err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _served(settings: Settings, listeners: frozenset[str], tls: bool) -> list[str]:
    """What the banner lists: the HTTP endpoints, the MLLP and DICOM ports this process opens."""
    base = f"{'https' if tls else 'http'}://{settings.host}:{settings.port}"
    served = []
    if "http" in listeners:
        served = [f"{name} at {base}/xds/{name}" for name in ("registry", "repository")
                  if name in settings.actors]
        if "pix" in settings.actors:
            served.append(f"PIX Manager at {base}/pix")
    if "pix" in settings.actors and "mllp" in listeners and settings.mllp_port > 0:
        served.append(f"PIX Manager MLLP port {settings.mllp_port}")
    if "imaging" in settings.actors and "dicom" in listeners and settings.dicom_port > 0:
        served.append(f"DICOM SCP {settings.dicom_ae_title} on port {settings.dicom_port}")
    return served or ["nothing to listen on"]


async def _listen_only(app: Starlette) -> None:
    """``app``'s lifespan without an HTTP port (the MLLP and DICOM listeners, the background
    loops), until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        await stop.wait()


def _cap_malloc_arenas(arenas: int = 2) -> None:
    """Two glibc malloc arenas for this process and the workers it forks.

    glibc gives threads that allocate arenas of their own (up to 8 per core) and keeps what
    they free; the worker threads streaming documents each held some (measured: a 1 GB ITI-43
    through S3 peaked ~20 MB higher). ``MALLOC_ARENA_MAX=2``, which many Python servers run
    with, has the same effect and wins when set; off glibc this does nothing.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _run_workers(settings: Settings, workers: int) -> None:
    """Fork ``workers`` uvicorn servers that accept on one listening socket; the first also
    runs the MLLP and DICOM listeners, the others HTTP only.

    Not ``uvicorn.run(workers=N)``: it binds its socket without IPPROTO_TCP, so asyncio never
    sets TCP_NODELAY on the accepted connections and every response waits out the client's
    delayed ACK (measured: 45 ms per request instead of 4 ms). The workers write their metrics
    to a fresh directory (prometheus-client multiprocess mode) that /metrics sums.
    """
    from xds.ops.metrics import prepare_multiprocess, process_exited

    metrics_dir = settings.spool_dir / f"metrics-{os.getpid()}"
    prepare_multiprocess(metrics_dir)  # before the fork, so that every worker writes there
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    context = multiprocessing.get_context("fork")
    stopping = False

    def spawn(slot: int) -> multiprocessing.process.BaseProcess:
        child = context.Process(target=_serve_socket, args=(
            sock, settings.log_level, settings.listeners if slot == 0 else "http"))
        child.start()
        return child

    children = [spawn(slot) for slot in range(workers)]

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive():
                os.kill(child.pid or 0, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        # Supervise: a worker that dies (kill -9, out of memory) is replaced in its slot, so
        # slot 0's MLLP/DICOM listeners come back too. Nothing to repair: a request it was
        # serving had no answer and left at most what 'xds blobs gc' collects.
        while True:
            multiprocessing.connection.wait([c.sentinel for c in children], timeout=1)
            for slot, child in enumerate(children):
                if child.is_alive():
                    continue
                child.join()
                process_exited(child.pid or 0)
                if not stopping:
                    log.warning("worker %d (pid %s) exited with %s; starting another", slot,
                                child.pid, child.exitcode)
                    children[slot] = spawn(slot)
            if stopping and not any(c.is_alive() for c in children):
                break
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve_socket(sock: socket.socket, log_level: str, listeners: str) -> None:
    from xds.app import build_app

    settings = Settings.from_env(log_level=log_level, listeners=listeners)
    uvicorn.Server(_config(build_app(settings), settings)).run(sockets=[sock])


def _config(app: Starlette, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's Config for ``app``; with TLS, the handshake runs in TlsAccept so that a
    refused peer is logged and audited (uvicorn's own ``ssl=`` would hide it)."""
    http: type[asyncio.Protocol] | str = "auto"
    context = listener_context(settings)
    if context is not None:
        from xds.security.alerts import refusal_recorder
        from xds.store.db import open_engine

        http = tls_protocol_class(HttpToolsProtocol, context,
                                  refusal_recorder(open_engine(settings), settings),
                                  f"http:{settings.port}")
    return uvicorn.Config(app, log_level=settings.log_level, proxy_headers=True, http=http,
                          **options)
