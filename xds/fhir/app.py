"""The FHIR REST API mounted at ``/fhir``: routes for metadata, read, search (GET and
``_search`` POST), ``Patient/$ihe-pix``, ``Binary`` (ITI-68) and the transaction (ITI-65)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from xds.fhir import endpoint, imagingstudy, iti65, iti66, iti67, iti68, patient, pixm
from xds.fhir.audit import BUNDLE_STATE, auditor
from xds.fhir.capability import capability_statement
from xds.fhir.context import FHIR_PATH, FhirContext
from xds.fhir.errors import FhirError, Issue, not_found
from xds.fhir.interactions import ResourceType, fhir_endpoint, read_body
from xds.fhir.resources import check_content_type, fhir_response, parse_resource
from xds.fhir.search import parse_search, searchset

__all__ = ["fhir_app", "fhir_routes", "resource_types"]

_FORM = "application/x-www-form-urlencoded"


def resource_types(ctx: FhirContext) -> list[ResourceType]:
    """The resource types this process serves (by the actors it runs)."""
    types = [patient.PATIENT, imagingstudy.IMAGING_STUDY, endpoint.ENDPOINT,
             iti67.DOCUMENT_REFERENCE, iti66.LIST, iti68.BINARY]
    return types


def fhir_routes(ctx: FhirContext) -> list[BaseRoute]:
    """The routes to add to the server: the FHIR app at FHIR_PATH, and ``POST [base]`` (ITI-65)
    without a trailing slash, which a Mount would answer with a redirect."""
    app = fhir_app(ctx)
    return [Route(FHIR_PATH, app, methods=["POST"]), Mount(FHIR_PATH, app=app)]


def fhir_app(ctx: FhirContext) -> Starlette:
    """The FHIR base as an ASGI app (mount it at FHIR_PATH)."""
    types = {t.name: t for t in resource_types(ctx)}
    transaction = ctx.repository is not None

    async def metadata(request: Request) -> Response:
        return fhir_response(capability_statement(ctx, list(types.values()),
                                                  transaction=transaction))

    def resource_type(name: str) -> ResourceType:
        found = types.get(name)
        if found is None:
            raise FhirError(404, Issue("not-supported", f"resource type {name} is not served "
                                       f"here (served: {', '.join(sorted(types))})"))
        return found

    async def search(request: Request) -> Response:
        kind = resource_type(request.path_params["type"])
        if kind.search is None:
            raise FhirError(405, Issue("not-supported", f"{kind.name} cannot be searched"))
        pairs: list[tuple[str, str]] = list(request.query_params.multi_items())
        if request.method == "POST":
            media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
            if media != _FORM:
                raise FhirError(415, Issue("not-supported", f"_search takes {_FORM}"))
            body = await read_body(request, 1024 * 1024)
            try:
                pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                   strict_parsing=False)
            except UnicodeDecodeError:
                raise FhirError(400, Issue("structure", "the form is not UTF-8")) from None
        lenient = "handling=lenient" in request.headers.get("prefer", "").replace(" ", "")
        checked = parse_search(kind.spec, pairs, lenient=lenient)
        result = await run_in_threadpool(kind.search, ctx, checked)
        return fhir_response(searchset(ctx.base_url, checked, result))

    async def read(request: Request) -> Response:
        kind = resource_type(request.path_params["type"])
        if kind.read is None:
            raise FhirError(405, Issue("not-supported", f"{kind.name} cannot be read"))
        resource: dict[str, Any] = await run_in_threadpool(kind.read, ctx,
                                                           request.path_params["id"])
        return fhir_response(resource)

    async def post_transaction(request: Request) -> Response:
        if not transaction:
            raise FhirError(405, Issue("not-supported", "this server runs no Document "
                                       "Recipient (no repository actor): no ITI-65"))
        check_content_type(request)
        body = await read_body(request, ctx.settings.max_envelope_bytes)
        bundle = parse_resource(body, "Bundle")
        setattr(request.state, BUNDLE_STATE, bundle)
        status, answer = await run_in_threadpool(iti65.provide_bundle, ctx, bundle)
        return fhir_response(answer, status)

    async def unknown(request: Request) -> Response:
        raise not_found(f"no FHIR interaction at {request.url.path}")

    bundle_audit, search_audit = auditor(ctx, "bundle"), auditor(ctx, "search")
    routes = [
        Route("/metadata", fhir_endpoint(metadata), methods=["GET"]),
        Route("/", fhir_endpoint(post_transaction, audit=bundle_audit), methods=["POST"]),
        Route(FHIR_PATH, fhir_endpoint(post_transaction, audit=bundle_audit), methods=["POST"]),
        Route("/Patient/$ihe-pix", fhir_endpoint(pixm.handler(ctx), audit=auditor(ctx, "pixm")),
              methods=["GET"]),
        *iti68.routes(ctx),
        Route("/{type}", fhir_endpoint(search, audit=search_audit), methods=["GET"]),
        Route("/{type}/_search", fhir_endpoint(search, audit=search_audit), methods=["POST"]),
        Route("/{type}/{id}", fhir_endpoint(read, audit=auditor(ctx, "read")), methods=["GET"]),
        Route("/{path:path}", fhir_endpoint(unknown), methods=["GET", "POST", "PUT", "DELETE"]),
    ]
    return Starlette(routes=routes)
