"""The ASGI SOAP 1.2 endpoint: transport checks, WS-Addressing dispatch, one error boundary
(IHE ITI TF-2 App. V; SOAP 1.2 Part 2 §7 HTTP binding)."""

from __future__ import annotations

import errno

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ..audit.events import REQUEST, RequestInfo
from ..config import WSDL_DIR
from .envelope import build_envelope, parse_envelope
from .faults import SoapFault, build_fault
from .mtom import MtomMessage, parse_content_type, read_multipart
from .mtom_encode import OutgoingAttachment, encode_mtom
from .ns import WSA_ANONYMOUS, WSA, WSSE
from .spool import Attachment
from .wsa import WSA_HEADERS, Addressing, action_not_supported, parse_addressing
from .wsdl import render_wsdl, request_origin
from .xmlparse import XmlError, parse_xml, parse_xml_chunks

if TYPE_CHECKING:
    from ..security.replay import ReplayClaim
    from ..security.xua import XuaPolicy

__all__ = ["Operation", "SoapEndpoint", "SoapRequest", "SoapResponse", "SOAP_CONTENT_TYPE"]

logger = logging.getLogger("xds.soap")

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"

_SECURITY = f"{{{WSSE}}}Security"
_NO_REPLY_ADDRESS = frozenset({WSA_ANONYMOUS, WSA + "/none"})


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """What a handler sees: addressing headers, the single env:Body child, received parts."""

    addressing: Addressing
    body: etree._Element
    envelope: etree._Element
    attachments: Mapping[str, Attachment]
    mtom: bool
    client: str
    spool_dir: Path


@dataclass(slots=True)
class SoapResponse:
    """A handler's answer: the env:Body child and the parts its xop:Include elements name."""

    body: etree._Element
    attachments: list[OutgoingAttachment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Operation:
    """One wsa:Action served by an endpoint.

    ``handler`` is synchronous and runs in a worker thread. ``on_error`` turns any exception
    other than ``SoapFault`` (already logged with its traceback) into a business response body.
    ``mtom`` forces an MTOM response (ITI-41, ITI-43); otherwise the request encoding is mirrored.
    """

    handler: Callable[[SoapRequest], SoapResponse]
    response_action: str
    on_error: Callable[[Exception], etree._Element]
    mtom: bool = False


class SoapEndpoint:
    """ASGI app for one SOAP 1.2 service: POST dispatches on wsa:Action, ``GET ?wsdl`` publishes.

    ``operations`` maps request wsa:Action to ``Operation``. ``service_path`` is the URL path the
    endpoint is mounted at (for the WSDL address); ``wsdl_url_path`` is where ``wsdl_files_app``
    is mounted. ``understood_headers`` are the Clark names of header blocks processed upstream
    of the handlers (WS-Addressing by default). With ``xua`` the XUA policy checks the
    assertion in wsse:Security (understood then, even when the policy is "off") before dispatch.
    Each request runs with ``xds.audit.events.REQUEST`` set: peer, endpoint URL, requestor.
    """

    #: ``request.state`` attribute where a POST leaves (wsa:Action, the handler's answer body,
    #: None for a fault) for the request metrics (``xds.ops.metrics``).
    ANSWER_STATE = "soap_answer"

    def __init__(
        self,
        operations: Mapping[str, Operation],
        *,
        wsdl: Path | None,
        service_path: str,
        max_envelope_bytes: int,
        spool_dir: Path,
        understood_headers: frozenset[str] = WSA_HEADERS,
        public_url: str = "",
        wsdl_url_path: str = "/wsdl",
        wsdl_dir: Path = WSDL_DIR,
        xua: XuaPolicy | None = None,
    ) -> None:
        self.operations = dict(operations)
        self.wsdl = wsdl
        self.service_path = service_path
        self.max_envelope_bytes = max_envelope_bytes
        self.spool_dir = spool_dir
        self.understood_headers = understood_headers | WSA_HEADERS
        if xua is not None:
            self.understood_headers |= {_SECURITY}
        self.xua = xua
        self.public_url = public_url
        self.wsdl_url_path = wsdl_url_path.rstrip("/")
        self.wsdl_dir = wsdl_dir.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.method == "POST":
            response = await self._post(request)
        elif request.method in ("GET", "HEAD"):
            try:
                response = self._get(request)
            except Exception:
                logger.exception("cannot publish WSDL %s", self.wsdl)
                response = PlainTextResponse("WSDL unavailable\n", 503)
        else:
            response = PlainTextResponse("Method Not Allowed", 405, headers={"Allow": "GET, POST"})
        await response(scope, receive, send)

    def _get(self, request: Request) -> Response:
        if not any(key.lower() == "wsdl" for key in request.query_params.keys()):
            text = "SOAP 1.2 endpoint: POST application/soap+xml or MTOM; GET ?wsdl for the WSDL\n"
            return PlainTextResponse(text, 405, headers={"Allow": "GET, POST"})
        if self.wsdl is None:
            return PlainTextResponse("No WSDL is published for this endpoint\n", 404)
        origin = request_origin(request.scope, self.public_url)
        base_url: str | None = None
        wsdl_path = self.wsdl.resolve()
        if wsdl_path.is_relative_to(self.wsdl_dir):
            relative = wsdl_path.relative_to(self.wsdl_dir).as_posix()
            base_url = f"{origin}{self.wsdl_url_path}/{relative}"
        body = render_wsdl(wsdl_path, address=origin + self.service_path, base_url=base_url)
        return Response(body, media_type="text/xml; charset=utf-8")

    async def _post(self, request: Request) -> Response:
        received: list[MtomMessage] = []
        token = REQUEST.set(None)
        try:
            return await self._answer(request, received)
        finally:
            REQUEST.reset(token)
            # Whatever the handler did not move out of the spool is deleted once it returns.
            for message in received:
                message.close()

    async def _answer(self, request: Request, received: list[MtomMessage]) -> Response:
        relates_to: str | None = None
        claims: list[ReplayClaim] = []
        # Faults mirror the request encoding as well (App. V.8), decided before the body is read.
        mtom = parse_content_type(request.headers.get("content-type", ""))[0] == "multipart/related"
        try:
            root = await self._read(request, received)
            envelope = parse_envelope(root, understood=self.understood_headers)
            addressing = parse_addressing(envelope.headers)
            relates_to = addressing.message_id
            setattr(request.state, self.ANSWER_STATE, (addressing.action, None))
            info = RequestInfo(client=request.client.host if request.client else "",
                               endpoint=self._url(request),
                               client_endpoint=_reply_address(addressing.reply_to))
            REQUEST.set(info)
            soap_request = SoapRequest(
                addressing=addressing,
                body=envelope.body,
                envelope=envelope.root,
                attachments=received[0].attachments if received else {},
                mtom=mtom,
                client=request.client.host if request.client else "",
                spool_dir=self.spool_dir,
            )
            # One worker-thread turn for the whole request: every hop between the event loop
            # and a worker waits for the GIL, and XUA would add two.
            operation, reply, result = await run_in_threadpool(
                self._serve, envelope.headers, soap_request, info, claims)
            setattr(request.state, self.ANSWER_STATE, (addressing.action, result.body))
            as_mtom = mtom or operation.mtom or bool(result.attachments)
            return _soap_response(reply, 200, as_mtom, result.attachments)
        except SoapFault as fault:
            await _spend(claims)
            logger.warning("SOAP fault %s to %s: %s", fault.code, _peer(request), fault.reason)
            return _soap_response(build_fault(fault, relates_to), fault.http_status, mtom, [])
        except ClientDisconnect:
            logger.info("client %s disconnected while sending the request", _peer(request))
            return Response(status_code=400)
        except Exception:
            # A bug in this layer, not in a handler; still no traceback on the wire.
            logger.exception("SOAP endpoint failure")
            await _spend(claims)
            internal = SoapFault("Receiver", "internal error")
            return _soap_response(build_fault(internal, relates_to), internal.http_status, mtom, [])

    def _serve(self, headers: tuple[etree._Element, ...], request: SoapRequest, info: RequestInfo,
               claims: list[ReplayClaim]) -> tuple[Operation, bytes, SoapResponse]:
        """In a worker thread: XUA, the handler, the replay claim settled, the reply built.
        ``claims`` receives the request's replay claim (for ``_spend`` on a fault)."""
        if self.xua is not None:
            from ..security.xua import propagated  # security builds on this package

            requestor, claim = self.xua.authenticate(headers, peer=info.client,
                                                     endpoint=info.endpoint,
                                                     service=self.service_path)
            if claim is not None:
                claims.append(claim)
            # This thread runs in a copy of the request's context: what it sets is seen by
            # the handler and the audit records it writes.
            REQUEST.set(replace(info, requestor=requestor, claim=claim, assertion=propagated(
                headers) if requestor is not None else b""))
        operation = self.operations.get(request.addressing.action)
        if operation is None:
            raise action_not_supported(request.addressing.action)
        result = self._dispatch(operation, request)
        if claims and self.xua is not None:
            # The assertion ID went into the request's audit write; a concurrent replay that
            # won makes this the replay fault (and the change was rolled back).
            self.xua.settle(claims[0], peer=info.client, endpoint=info.endpoint)
        reply = build_envelope(result.body, action=operation.response_action,
                               relates_to=request.addressing.message_id)
        return operation, reply, result

    def _url(self, request: Request) -> str:
        return request_origin(request.scope, self.public_url) + self.service_path

    async def _read(self, request: Request, received: list[MtomMessage]) -> etree._Element:
        content_type = request.headers.get("content-type", "")
        mime, _ = parse_content_type(content_type)
        cap = self.max_envelope_bytes
        try:
            if mime == "application/soap+xml":
                # IHE_WSP211: an action= parameter is ignored; dispatch is on wsa:Action only.
                chunks = await self._read_capped(request)
                # Parsing and serializing tens of MB (inline base64) must not stall the loop.
                return await run_in_threadpool(parse_xml_chunks, chunks, max_bytes=cap)
            if mime == "multipart/related":
                message = await read_multipart(request.stream(), content_type, self.spool_dir, cap)
                received.append(message)
                return await run_in_threadpool(parse_xml, message.root, max_bytes=cap)
        except XmlError as exc:
            raise SoapFault("Sender", str(exc)) from None
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            # The spool files written so far are already gone (read_multipart discards them).
            raise SoapFault("Receiver", "no storage left for the attachments "
                            "(XDSRepositoryOutOfResources); retry later", status=507) from None
        if mime == "text/xml":
            raise SoapFault(
                "VersionMismatch", "text/xml is SOAP 1.1; this endpoint speaks SOAP 1.2"
            )
        raise SoapFault("Sender", f"unsupported media type {mime or '(none)'!r}", status=415)

    async def _read_capped(self, request: Request) -> list[bytes]:
        cap = self.max_envelope_bytes
        too_big = SoapFault("Sender", f"SOAP message exceeds {cap} bytes", status=413)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_big
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > cap:
                raise too_big
            chunks.append(chunk)
        return chunks

    @staticmethod
    def _dispatch(operation: Operation, request: SoapRequest) -> SoapResponse:
        try:
            return operation.handler(request)
        except SoapFault:
            raise
        except Exception as exc:
            logger.exception("handler for %s failed", request.addressing.action)
            return SoapResponse(body=operation.on_error(exc))


async def _spend(claims: list[ReplayClaim]) -> None:
    """A request that failed still uses up its assertion (unless the failure was its replay)."""
    for claim in claims:
        if not claim.pending:
            continue
        try:
            await run_in_threadpool(claim.settle)
        except Exception:
            logger.exception("the XUA replay cache could not record an assertion")


def _soap_response(
    envelope: bytes, status: int, mtom: bool, attachments: list[OutgoingAttachment]
) -> Response:
    if not mtom:
        return Response(envelope, status, headers={"Content-Type": SOAP_CONTENT_TYPE})
    stream = encode_mtom(envelope, attachments)
    return StreamingResponse(stream.aiter_bytes(), status, headers=stream.headers)


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def _reply_address(address: str | None) -> str:
    return "" if not address or address in _NO_REPLY_ADDRESS else address


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Lets the endpoint run as a bare app under uvicorn, which sends lifespan events.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
