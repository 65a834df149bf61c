"""RAD-55 WADO retrieve (WADO-URI, DICOM PS3.18 §9): one instance as ``application/dicom``.

``GET /wado?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..[&contentType=application/dicom]
[&transferSyntax=<uid>]``; HEAD gives the same headers without the body.

* 400: requestType is not WADO, or a UID parameter is missing or empty;
* 404: no such instance, or the instance is in another study or series than the URL names,
  or its bytes are gone;
* 406: contentType (a comma-separated list) does not offer ``application/dicom`` (this source
  renders nothing: no image/jpeg), the Accept header excludes it, or ``transferSyntax`` names a
  syntax the instance cannot be produced in.

Without ``transferSyntax`` the instance is sent in Explicit VR Little Endian (PS3.18 default)
when it can be (stored in an uncompressed little-endian syntax), otherwise as stored: this
source does not decompress, and a 406 would make the object unreachable for consumers that
do not name its syntax. A missing contentType means ``application/dicom`` for the same reason.

An instance sent as stored honours ``Range`` (206 with that part read from the store, 416 past
the end; ETag = its SHA-256); a converted one is sent whole. 503 while the store is down.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from xds.audit.imaging_events import InstanceRef, transferred_events
from xds.audit.transactions import record_after, rest_request, with_request
from xds.dicom.uids import DICOM_MIME, EXPLICIT_LE
from xds.imaging.content import ANY_SYNTAX, instance_content
from xds.imaging.context import Content, ImagingSource
from xds.imaging.dicomweb import accepts, plain_text
from xds.ranges import plan_range
from xds.store.blobs import StoreUnavailable
from xds.store.db import read_connection
from xds.mpi.model import PatientIdentifier
from xds.store.instances import Instance, find_instance

__all__ = ["wado_app"]

log = logging.getLogger("xds.imaging.wado")



class _WadoEndpoint:
    """The ASGI endpoint (a class, so that Starlette's Route mounts it as an app)."""

    def __init__(self, source: ImagingSource) -> None:
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        """The answer to one request; a GET is audited (RAD-55, Instances Transferred)."""
        found: list[Instance | None] = [None]
        response = await self._respond(request, found)
        if request.method == "GET":
            await run_in_threadpool(self._audit, request, response.status_code, found[0])
        return response

    def _audit(self, request: Request, status: int, instance: Instance | None) -> None:
        q = request.query_params
        uids = [(q.get(name) or "").strip() for name in ("studyUID", "seriesUID", "objectUID")]
        patient = "" if instance is None or not instance.patient_id else \
            PatientIdentifier(instance.patient_issuer, instance.patient_id).cx
        ref = [InstanceRef(uids[0], uids[1], uids[2], patient, self.source.unique_id)] \
            if uids[2] else []
        info = rest_request(request.client.host if request.client else "",
                            str(request.url.replace(query="")))
        settings = self.source.settings
        record_after(self.source.engine, settings, with_request(info, lambda: transferred_events(
            settings, "RAD-55", ref if status == 200 else [], [] if status == 200 else ref,
            description=f"HTTP {status}")))

    async def _respond(self, request: Request, found_instance: list[Instance | None]) -> Response:
        q = request.query_params
        if q.get("requestType") != "WADO":
            return plain_text(400, "requestType must be WADO")
        uids = {name: (q.get(name) or "").strip() for name in ("studyUID", "seriesUID", "objectUID")}
        missing = [name for name, value in uids.items() if not value]
        if missing:
            return plain_text(400, f"missing {', '.join(missing)}")
        offered = [t.split(";")[0].strip().lower() for t in (q.get("contentType") or DICOM_MIME)
                   .split(",")]
        if DICOM_MIME not in offered:
            return plain_text(406, f"contentType {q.get('contentType')} is not supported: this "
                               "source returns application/dicom only (no rendering)")
        if not accepts(request.headers.get("accept"), DICOM_MIME):
            return plain_text(406, "the Accept header does not allow application/dicom")
        syntax = (q.get("transferSyntax") or "").strip() or None
        try:
            found_instance[0], found = await run_in_threadpool(
                self._content, uids["studyUID"], uids["seriesUID"], uids["objectUID"], syntax)
        except (FileNotFoundError, StoreUnavailable) as exc:
            return _unreadable(exc)
        if found is None:
            return plain_text(404, "no such object in that study and series")
        if isinstance(found, str):
            return plain_text(406, found)
        head = request.method == "HEAD"
        if found.open_range is not None and found.size is not None:
            # As stored: a Range is read from the store as that range only.
            plan = plan_range(request.headers, found.size, etag=found.sha256)
            if head or plan.status == 416:
                return plan.response(None, DICOM_MIME)
            try:
                body = await run_in_threadpool(found.open_range, plan.start, plan.end)
            except (FileNotFoundError, StoreUnavailable) as exc:
                return _unreadable(exc)
            return plan.response(body, DICOM_MIME)
        headers = {"Content-Type": DICOM_MIME}
        if found.size is not None:
            headers["Content-Length"] = str(found.size)
        if head:
            return Response(b"", headers=headers)
        return StreamingResponse(found.open(), headers=headers)

    def _content(self, study_uid: str, series_uid: str, sop_uid: str,
                 syntax: str | None) -> tuple[Instance | None, Content | str | None]:
        """The instance found, and the Content to send: None when unknown or misplaced; a
        message when no syntax fits."""
        with read_connection(self.source.engine) as conn:
            instance = find_instance(conn, sop_uid)
        if instance is None or not instance.in_series(study_uid, series_uid):
            return instance, None
        if syntax is not None:
            content = instance_content(self.source, instance, [syntax])
            return instance, content if content is not None else (
                f"{sop_uid} (stored as {instance.transfer_syntax_uid}) cannot be sent in "
                f"transfer syntax {syntax}")
        content = instance_content(self.source, instance, [EXPLICIT_LE])
        if content is None:
            content = instance_content(self.source, instance, [ANY_SYNTAX])
        return instance, content if content is not None else f"{sop_uid} cannot be sent"


def _unreadable(exc: OSError) -> Response:
    """404 for stored bytes that are gone, 503 while the store cannot be read."""
    log.warning("WADO: %s", exc)
    if isinstance(exc, StoreUnavailable):
        return plain_text(503, "the image store is unavailable; retry later")
    return plain_text(404, "the object is no longer available")


def wado_app(source: ImagingSource) -> ASGIApp:
    """The WADO-URI endpoint of ``source`` (mounted by ``xds.app`` at /wado, GET and HEAD)."""
    return _WadoEndpoint(source)
