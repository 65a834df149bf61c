"""RAD-107 WADO-RS retrieve (DICOM PS3.18 §10.4): studies, series and instances as
``multipart/related; type="application/dicom"``, and their metadata as DICOM JSON (PS3.18 F.2).

Routes (under /dicomweb): ``/studies/{study}[/series/{series}[/instances/{sop}]]`` and the same
followed by ``/metadata``. GET and HEAD.

Retrieve: ``Accept: multipart/related; type="application/dicom"[; transfer-syntax=<uid>|*]``
(several ranges and q-values allowed; the ``type`` value quoted or not). Without
``transfer-syntax`` the syntax is Explicit VR Little Endian (PS3.18; digest §6 item 21), ``*``
means as stored; ``*/*`` or no Accept is the default. 200 when every instance is sent, 206 when
some cannot be produced in an accepted syntax (or their bytes are gone), 406 when none can or the
Accept offers nothing this service makes, 404 for an unknown (or misplaced) study, series or
instance. Parts are streamed one after the other; each carries ``Content-Type:
application/dicom; transfer-syntax=<uid>`` and, when known, Content-Length.

Metadata: ``application/dicom+json`` (or ``application/json``), a JSON array with one object per
instance, built from the stored header (everything up to Pixel Data); Pixel Data is left out,
since this service has no bulk-data resource to point a BulkDataURI at.
"""

from __future__ import annotations

import json
import logging
import uuid
from itertools import chain
from collections.abc import Iterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from xds.audit.imaging_events import InstanceRef, transferred_events
from xds.audit.transactions import record_after, rest_request, with_request
from xds.dicom.part10 import NotDicomError, read_header
from xds.dicom.uids import DICOM_MIME, EXPLICIT_LE
from xds.imaging.archive import ArchiveError, DicomwebArchive
from xds.imaging.content import ANY_SYNTAX, instance_content
from xds.imaging.context import Content, ImagingSource
from xds.mpi.model import PatientIdentifier
from xds.soap.mtom import parse_content_type
from xds.soap import coalesce
from xds.store.db import read_connection
from xds.store.instances import Instance, find_instance, study_instances

__all__ = ["dicomweb_app", "media_ranges", "accepts", "retrieve_syntaxes", "plain_text"]

log = logging.getLogger("xds.imaging.dicomweb")

JSON_MIME = "application/dicom+json"


def _split_list(value: str) -> list[str]:
    """A comma-separated header split outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def media_ranges(accept: str | None) -> list[tuple[str, dict[str, str]]]:
    """The ranges of an Accept header, best q first (stable), those with q=0 dropped."""
    ranges: list[tuple[float, str, dict[str, str]]] = []
    for item in _split_list(accept or ""):
        media, params = parse_content_type(item)
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranges.append((q, media, params))
    ranges.sort(key=lambda r: -r[0])
    return [(media, params) for _, media, params in ranges]


def accepts(accept: str | None, media: str) -> bool:
    """Whether ``accept`` (no header: anything) allows ``media``."""
    if not (accept or "").strip():
        return True
    major = media.split("/")[0] + "/*"
    return any(m in (media, major, "*/*") for m, _ in media_ranges(accept))


def retrieve_syntaxes(accept: str | None) -> list[str]:
    """The transfer syntaxes a DICOM retrieve may use, in preference order; [] for 406."""
    if not (accept or "").strip():
        return [EXPLICIT_LE]
    syntaxes: list[str] = []
    for media, params in media_ranges(accept):
        if media == "multipart/related" and params.get("type", DICOM_MIME).lower() == DICOM_MIME:
            syntaxes.append(params.get("transfer-syntax") or EXPLICIT_LE)
        elif media in ("*/*", "multipart/*"):
            syntaxes.append(EXPLICIT_LE)
    return list(dict.fromkeys(syntaxes))


def plain_text(status: int, text: str) -> Response:
    """An error answer of the WADO services: ``text`` as text/plain with ``status``."""
    return PlainTextResponse(text + "\n", status)


class _Dicomweb:
    def __init__(self, source: ImagingSource) -> None:
        self.source = source

    def _instances(self, request: Request) -> list[Instance]:
        study = request.path_params["study"]
        series = request.path_params.get("series")
        sop = request.path_params.get("sop")
        with read_connection(self.source.engine) as conn:
            if sop is None:
                return study_instances(conn, study, series)
            found = find_instance(conn, sop)
        if found is None or not found.in_series(study, series):
            return []
        return [found]

    def _contents(self, instances: Sequence[Instance],
                  syntaxes: list[str]) -> tuple[list[Content], list[Instance]]:
        """The Content of each instance that can be sent, and the instances that cannot."""
        contents: list[Content] = []
        left_out: list[Instance] = []
        for instance in instances:
            try:
                content = instance_content(self.source, instance, syntaxes)
            except FileNotFoundError as exc:
                log.warning("WADO-RS: %s", exc)
                content = None
            if content is not None:
                contents.append(content)
            else:
                left_out.append(instance)
        return contents, left_out

    def _audit(self, request: Request, sent: Sequence[Instance], left_out: Sequence[Instance],
               status: int) -> None:
        """RAD-107 Instances Transferred: what was sent, and what was asked for but not."""
        if request.method != "GET":
            return
        path = request.path_params
        asked = [] if sent or left_out else [InstanceRef(
            path["study"], path.get("series", ""), path.get("sop", ""),
            repository_id=self.source.unique_id)]
        info = rest_request(request.client.host if request.client else "",
                            str(request.url.replace(query="")))
        settings = self.source.settings
        record_after(self.source.engine, settings, with_request(info, lambda: transferred_events(
            settings, "RAD-107", [self._ref(i) for i in sent],
            [self._ref(i) for i in left_out] + asked, description=f"HTTP {status}")))

    def _ref(self, instance: Instance) -> InstanceRef:
        patient = PatientIdentifier(instance.patient_issuer, instance.patient_id).cx \
            if instance.patient_id else ""
        return InstanceRef(instance.study_instance_uid, instance.series_instance_uid,
                           instance.sop_instance_uid, patient, self.source.unique_id)

    async def retrieve(self, request: Request) -> Response:
        syntaxes = retrieve_syntaxes(request.headers.get("accept"))
        if not syntaxes:
            return plain_text(406, 'this service sends multipart/related; type="application/dicom"')
        instances = await run_in_threadpool(self._instances, request)
        if not instances:
            await run_in_threadpool(self._audit, request, [], [], 404)
            return plain_text(404, "no such study, series or instance")
        contents, left_out = await run_in_threadpool(self._contents, instances, syntaxes)
        unsent = {id(i) for i in left_out}
        sent = [i for i in instances if id(i) not in unsent]
        await run_in_threadpool(self._audit, request, sent, left_out,
                                206 if left_out and contents else 200 if contents else 406)
        if not contents:
            return plain_text(406, f"no instance can be sent in transfer syntax {', '.join(syntaxes)}")
        boundary = uuid.uuid4().hex
        heads = [_part_head(boundary, c) for c in contents]
        tail = f"--{boundary}--\r\n".encode("ascii")
        headers = {"Content-Type": f'multipart/related; type="{DICOM_MIME}"; boundary={boundary}'}
        if all(c.size is not None for c in contents):
            total = sum(len(h) + (c.size or 0) + 2 for h, c in zip(heads, contents, strict=True))
            headers["Content-Length"] = str(total + len(tail))
        status = 206 if left_out else 200
        if request.method == "HEAD":
            return Response(b"", status, headers=headers)
        return StreamingResponse(_multipart(heads, contents, tail), status, headers=headers)

    async def metadata(self, request: Request) -> Response:
        accept = request.headers.get("accept")
        if not (accepts(accept, JSON_MIME) or accepts(accept, "application/json")):
            return plain_text(406, "metadata is sent as application/dicom+json")
        instances = await run_in_threadpool(self._instances, request)
        if not instances:
            return plain_text(404, "no such study, series or instance")
        headers = {"Content-Type": JSON_MIME}
        if request.method == "HEAD":
            return Response(b"", headers=headers)
        return StreamingResponse(self._json_array(instances), headers=headers)

    def _json_array(self, instances: list[Instance]) -> Iterator[bytes]:
        archived: dict[str, dict[str, Any]] | None = None
        yield b"["
        first = True
        for instance in instances:
            if instance.archive_url is not None:
                if archived is None:
                    archived = self._archive_metadata(instance.study_instance_uid)
                item = archived.get(instance.sop_instance_uid)
            else:
                item = self._stored_metadata(instance)
            if item is None:
                continue
            yield (b"" if first else b",") + json.dumps(item, separators=(",", ":")).encode()
            first = False
        yield b"]"

    def _stored_metadata(self, instance: Instance) -> dict[str, Any] | None:
        blobs = self.source.blobs
        if instance.sha256 is None:
            return None
        try:
            with blobs.local_copy(instance.sha256) as path:
                header = read_header(path)
        except (OSError, NotDicomError) as exc:
            log.warning("WADO-RS metadata of %s: %s", instance.sop_instance_uid, exc)
            return None
        return header.dataset.to_json_dict()

    def _archive_metadata(self, study_uid: str) -> dict[str, dict[str, Any]]:
        """The archive's metadata of the study by SOP Instance UID (Pixel Data left out)."""
        if not isinstance(self.source.archive, DicomwebArchive):
            return {}
        try:
            items = self.source.archive.study_metadata(study_uid)
        except ArchiveError as exc:
            log.warning("WADO-RS metadata of study %s: %s", study_uid, exc)
            return {}
        out: dict[str, dict[str, Any]] = {}
        for item in items:
            values = item.get("00080018", {}).get("Value") or [""]
            out[str(values[0])] = {k: v for k, v in item.items() if k != "7FE00010"}
        return out


def _part_head(boundary: str, content: Content) -> bytes:
    media = DICOM_MIME
    if content.transfer_syntax_uid and content.transfer_syntax_uid != ANY_SYNTAX:
        media += f"; transfer-syntax={content.transfer_syntax_uid}"
    head = f"--{boundary}\r\nContent-Type: {media}\r\n"
    if content.size is not None:
        head += f"Content-Length: {content.size}\r\n"
    return (head + "\r\n").encode("ascii")


def _multipart(heads: list[bytes], contents: list[Content], tail: bytes) -> Iterator[bytes]:
    """The multipart body in ``coalesce``d writes; each instance is opened only when its turn
    comes."""
    parts = chain.from_iterable(chain((head,), content.open(), (b"\r\n",))
                                for head, content in zip(heads, contents, strict=True))
    return coalesce(chain(parts, (tail,)))


def dicomweb_app(source: ImagingSource) -> ASGIApp:
    """The WADO-RS service of ``source`` (mounted by ``xds.app`` at /dicomweb)."""
    api = _Dicomweb(source)
    base = "/studies/{study}"
    paths = [base, base + "/series/{series}", base + "/series/{series}/instances/{sop}"]
    routes = [Route(p, api.retrieve) for p in paths] + \
        [Route(p + "/metadata", api.metadata) for p in paths]
    return Starlette(routes=routes)
