"""The pieces every FHIR route shares: a resource type's interactions, the error boundary that
turns anything into an OperationOutcome, and the capped request body."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from xds.audit.events import REQUEST
from xds.audit.transactions import rest_request
from xds.fhir.context import FhirContext
from xds.fhir.errors import FhirError, Issue, outcome
from xds.fhir.resources import check_format, fhir_response
from xds.fhir.search import SearchRequest, SearchResult, SearchSpec

__all__ = ["ResourceType", "Operation", "fhir_endpoint", "read_body", "Handler"]

log = logging.getLogger("xds.fhir")

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation:
    """A named operation (``$ihe-pix``) as the CapabilityStatement lists it."""

    name: str
    definition: str
    documentation: str = ""


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type the facade serves: its search parameters and what answers read and
    search (synchronous functions; they run in a worker thread)."""

    spec: SearchSpec
    read: Callable[[FhirContext, str], dict[str, Any]] | None = None
    search: Callable[[FhirContext, SearchRequest], SearchResult] | None = None
    profiles: tuple[str, ...] = ()
    operations: tuple[Operation, ...] = ()
    documentation: str = ""
    #: Interactions served by dedicated routes (e.g. ``create`` for none, ``read`` of Binary).
    extra_interactions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        """The resource type name."""
        return self.spec.resource_type


def fhir_endpoint(handler: Handler, *, negotiate: bool = True,
                  audit: Callable[[Request, int], None] | None = None) -> Handler:
    """``handler`` behind the error boundary: FhirError becomes its OperationOutcome, anything
    else a logged 500 OperationOutcome without internals; the format is checked first.

    The handler runs with ``xds.audit.events.REQUEST`` set (client address, URL called);
    ``audit`` (a worker thread) is then given the request and the answer's status."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        token = REQUEST.set(rest_request(request.client.host if request.client else "",
                                         str(request.url.replace(query=""))))
        try:
            response = await _answer(request)
            if audit is not None:
                try:
                    await run_in_threadpool(audit, request, response.status_code)
                except Exception:  # never the request's failure
                    log.exception("FHIR audit of %s failed", request.url.path)
            return response
        finally:
            REQUEST.reset(token)

    async def _answer(request: Request) -> Response:
        try:
            if negotiate:
                check_format(request)
            return await handler(request)
        except FhirError as exc:
            return fhir_response(outcome(exc.issues), exc.status)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception:
            log.exception("FHIR %s %s failed", request.method, request.url.path)
            return fhir_response(outcome([Issue("exception", "the server failed to answer this "
                                                "request; the error is logged")]), 500)

    return endpoint


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` octets (413 OperationOutcome beyond)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FhirError(413, Issue("too-costly", f"the body ({declared} octets) is larger than "
                                   f"this server takes ({limit} octets)"))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError(413, Issue("too-costly", "the body is larger than this server takes "
                                       f"({limit} octets)"))
        chunks.append(chunk)
    return b"".join(chunks)
