"""ITI-68 Retrieve Document: ``GET /fhir/Binary/{id}`` streams the stored bytes.

The id is the DocumentEntry's (its entryUUID without ``urn:uuid:``), which is what
``DocumentReference.content.attachment.url`` points at. The body is the document itself with
its mimeType and size, streamed chunk by chunk from the blob store. Answers: 404 for an unknown
id or a document another repository holds, 410 for a Deprecated entry, 406 when ``Accept``
(or ``_format``) excludes the mimeType, 503 while the document store is unavailable; a
``Range`` is answered 206 (416 past the end; ETag = the SHA-256). Asking
for ``application/fhir+json`` gets 406 too: this server never wraps documents in a Binary
resource (one representation, streamed).
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sqlalchemy import select

from xds.ebrim.vocabulary import Status
from xds.fhir.context import FhirContext
from xds.fhir.errors import FhirError, Issue, not_found
from xds.fhir.audit import auditor
from xds.fhir.interactions import ResourceType, fhir_endpoint
from xds.fhir.iti67 import check_id
from xds.fhir.search import SearchSpec

from xds.ranges import plan_range
from xds.store.blobs import StoreUnavailable
from xds.store.db import read_connection
from xds.store.documents import StoredDocument, find_documents
from xds.store.tables import document_entry

__all__ = ["BINARY", "routes", "accepts"]

log = logging.getLogger("xds.fhir.iti68")

BINARY = ResourceType(spec=SearchSpec("Binary", ()), extra_interactions=("read",),
                      documentation="ITI-68 Retrieve Document: the document bytes as stored, "
                                    "with their mimeType (no Binary resource wrapping)")


def accepts(accept: str | None, mime_type: str) -> bool:
    """Whether an ``Accept`` header takes ``mime_type`` (absent, ``*/*``, ``type/*``, exact)."""
    if not accept:
        return True
    major = mime_type.split("/")[0].lower()
    for item in accept.split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        if "q=0" in params.replace(" ", "") and "q=0." not in params.replace(" ", ""):
            continue
        if media in ("*/*", f"{major}/*", mime_type.lower(), ""):
            return True
    return False


def _document(ctx: FhirContext, resource: str) -> tuple[StoredDocument, str]:
    """The stored document of DocumentEntry ``resource`` and its mimeType (404/410)."""
    uuid = check_id(resource, "Binary")
    de = document_entry.c
    with read_connection(ctx.engine) as conn:
        row = conn.execute(select(de.status, de.unique_id, de.repository_unique_id,
                                  de.mime_type).where(de.id == uuid)).first()
        if row is None:
            raise not_found(f"Binary/{resource}: no document has this id")
        status, unique_id, repository, mime_type = row
        if status == Status.Deprecated:
            raise FhirError(410, Issue("deleted", f"Binary/{resource}: the document was "
                                       "deprecated (replaced); find its successor through "
                                       "DocumentReference.relatesTo"))
        ours = ctx.settings.repository_unique_id
        if repository != ours:
            raise not_found(f"Binary/{resource}: the document is held by repository "
                            f"{repository or '(none)'}, not this one ({ours}); retrieve it "
                            "there with ITI-43")
        stored = find_documents(conn, ours, [unique_id]).get(unique_id)
    if stored is None:
        raise not_found(f"Binary/{resource}: repository {ours} holds no bytes for "
                        f"document {unique_id}")
    return stored, mime_type


def routes(ctx: FhirContext) -> list[BaseRoute]:
    """The Binary routes (before the generic read route)."""

    async def binary(request: Request) -> Response:
        stored, mime_type = await run_in_threadpool(_document, ctx, request.path_params["id"])
        fmt = request.query_params.get("_format")
        if not accepts(fmt or request.headers.get("accept"), mime_type):
            raise FhirError(406, Issue("not-supported", f"the document is {mime_type}; ask "
                                       f"for it (or */*), not {fmt or request.headers['accept']}"))
        blobs = ctx.blob_store()
        plan = plan_range(request.headers, stored.size, etag=stored.sha256)
        if plan.status == 416:
            return plan.response(None, mime_type)
        try:
            # Off the event loop: on S3 this is the (ranged) GET; FileNotFoundError and
            # StoreUnavailable come before the first chunk.
            body = await run_in_threadpool(blobs.open, stored.sha256, plan.start, plan.end)
        except FileNotFoundError:
            raise not_found(f"Binary/{request.path_params['id']}: the stored bytes are "
                            "missing") from None
        except StoreUnavailable as exc:
            log.warning("ITI-68: %s", exc)
            raise FhirError(503, Issue("transient", f"Binary/{request.path_params['id']}: the "
                                       "document store is unavailable; retry later")) from None
        return plan.response(body, mime_type)

    return [Route("/Binary/{id}", fhir_endpoint(binary, negotiate=False,
                                                audit=auditor(ctx, "binary")), methods=["GET"])]
