"""Document Consumer, ITI-43 Retrieve Document Set initiator (ITI TF-2 §3.43): the MTOM answer is
read as a stream, each document spooled next to its output file and moved into place."""

from __future__ import annotations

import asyncio
import errno
import mimetypes
import os
import re
import shutil
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import httpx
import zeep
from lxml import etree

from xds.clients.consumer import _IheAddressing
from xds.clients.source import (
    MAX_ROOT_BYTES, Progress, RegistryResponse, RepositoryFault, _envelope_body, _read_mtom,
    registry_response_of,
)
from xds.config import WSDL_DIR
from xds.ebrim.rim import Element
from xds.ebrim.vocabulary import NS_RS, NS_XDS, ResponseStatus
from xds.model.errors import RegistryError
from xds.soap import Attachment, MtomMessage, SoapFault, decode_inline, encode_mtom, resolve_xop
from xds.soap.mtom import parse_content_type
from xds.security.credentials import NO_CREDENTIALS, Credentials
from xds.soap.ns import SOAP12_ENV, WSA

__all__ = [
    "DocumentRequest", "DocumentResponse", "RetrieveDocumentSetResponse", "REPOSITORY_WSDL",
    "retrieve", "retrieve_request",
]

REPOSITORY_WSDL = WSDL_DIR / "iti" / "wsdl" / "XDS.b_DocumentRepository.wsdl"
_BINDING = "{urn:ihe:iti:xds-b:2007}DocumentRepository_Binding"
_XDS = f"{{{NS_XDS}}}"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class DocumentRequest(NamedTuple):
    """One ``xds:DocumentRequest``: which document, in which repository (and community)."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass(slots=True, kw_only=True)
class DocumentResponse:
    """One retrieved document, already in its output file."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None
    mime_type: str
    path: Path
    size: int
    sha1: str
    sha256: str


@dataclass(slots=True, kw_only=True)
class RetrieveDocumentSetResponse:
    """The answer: overall status, every RegistryError, the documents saved."""

    status: ResponseStatus
    errors: list[RegistryError] = field(default_factory=list)
    documents: list[DocumentResponse] = field(default_factory=list)


@cache
def _zeep_client() -> zeep.Client:
    # zeep has no type hints (the consumer module is exempted in pyproject; this one is not).
    return zeep.Client(
        str(REPOSITORY_WSDL), plugins=[_IheAddressing()])


def retrieve_request(url: str, requests: Sequence[DocumentRequest],
                     credentials: Credentials = NO_CREDENTIALS) -> bytes:
    """The ITI-43 envelope, serialised by zeep from the official repository WSDL.

    zeep writes Action, MessageID and To (from the WSDL's address, corrected to ``url`` here);
    the IHE plugin of the ITI-18 consumer adds mustUnderstand and ReplyTo.
    """
    client = _zeep_client()
    service = client.create_service(_BINDING, url)
    envelope = client.create_message(
        service, "DocumentRepository_RetrieveDocumentSet", DocumentRequest=[
            {"HomeCommunityId": r.home_community_id, "RepositoryUniqueId": r.repository_unique_id,
             "DocumentUniqueId": r.document_unique_id} for r in requests])
    to = envelope.find(f".//{{{WSA}}}To")
    if to is not None:
        to.text = url
    header = envelope.find(f"{{{SOAP12_ENV}}}Header")
    if header is not None:
        header.extend(credentials.soap_headers())
    result: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return result


def retrieve(
    url: str,
    requests: Sequence[DocumentRequest | tuple[str, str, str | None]],
    out: Path | Sequence[Path],
    *,
    progress: Progress | None = None,
    timeout: float = 600.0,
    credentials: Credentials = NO_CREDENTIALS,
) -> RetrieveDocumentSetResponse:
    """Send ITI-43 to the repository at ``url`` and save every document it returns, with
    ``credentials`` (TLS client certificate and CAs, XUA assertion).

    ``requests`` are (repositoryUniqueId, documentUniqueId, homeCommunityId or None). ``out`` is
    a directory (files named ``<documentUniqueId><extension of the mimeType>``) or one path
    per request. Each attachment streams into a temp file beside its output and is renamed into
    place, so memory does not grow with document size. A PartialSuccess keeps the documents that
    came; their errors are in ``errors``. Existing files are replaced. ``progress`` sees the
    response bytes received. Raises RepositoryFault for a SOAP Fault or an answer that is not a
    RetrieveDocumentSetResponse, httpx.HTTPError when the repository cannot be reached.

    >>> retrieve("http://127.0.0.1:8080/xds/repository",
    ...          [("1.3.6.1.4.1.21367.13.50.1", "2.25.1234", None)], Path("downloads"))
    """
    wanted = [DocumentRequest(*r) for r in requests]
    if not wanted:
        raise ValueError("nothing to retrieve")
    if isinstance(out, Path):
        out.mkdir(parents=True, exist_ok=True)
        targets: dict[tuple[str, str], Path] | Path = out
        spool_dir = out
    else:
        if len(out) != len(wanted):
            raise ValueError(f"{len(out)} output paths for {len(wanted)} documents")
        targets = {(r.repository_unique_id, r.document_unique_id): p
                   for r, p in zip(wanted, out, strict=True)}
        spool_dir = out[0].parent
        spool_dir.mkdir(parents=True, exist_ok=True)
    envelope = retrieve_request(url, wanted, credentials)
    return asyncio.run(post_retrieve(url, envelope, targets, spool_dir, progress, timeout,
                                     credentials.verify()))


async def post_retrieve(url: str, envelope: bytes, targets: dict[tuple[str, str], Path] | Path,
                    spool_dir: Path, progress: Progress | None, timeout: float,
                    verify: ssl.SSLContext | bool = True) -> RetrieveDocumentSetResponse:
    # App. V.8: request and response share the encoding, so the request is MTOM (root only).
    stream = encode_mtom(envelope)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=30.0),
                                 verify=verify) as client:
        async with client.stream("POST", url, content=stream.aiter_bytes(),
                                 headers=stream.headers) as response:
            content_type = response.headers.get("content-type", "")
            if parse_content_type(content_type)[0] != "multipart/related":
                body = _envelope_body(await _read_capped(response), content_type)
                return _save(body, MtomMessage(b"", content_type), targets, spool_dir)
            total = int(response.headers.get("content-length", "0")) or None
            message = await _read_mtom(_counted(response, total, progress), content_type, spool_dir)
    try:
        body = _envelope_body(message.root, message.root_content_type)
        return _save(body, message, targets, spool_dir)
    finally:
        message.close()


async def _counted(response: httpx.Response, total: int | None,
                   progress: Progress | None) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_bytes():
        yield chunk
        if progress is not None:
            progress(response.num_bytes_downloaded, total)


async def _read_capped(response: httpx.Response) -> bytes:
    # A Simple SOAP answer carries documents inline, so it is parsed whole, but never unbounded.
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ROOT_BYTES:
            raise RepositoryFault(f"the answer exceeds {MAX_ROOT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _save(body: Element, message: MtomMessage, targets: dict[tuple[str, str], Path] | Path,
          spool_dir: Path) -> RetrieveDocumentSetResponse:
    if body.tag != _XDS + "RetrieveDocumentSetResponse":
        raise RepositoryFault(f"expected xds:RetrieveDocumentSetResponse, got {body.tag}")
    registry = body.find(f"{{{NS_RS}}}RegistryResponse")
    if registry is None:
        raise RepositoryFault("RetrieveDocumentSetResponse without rs:RegistryResponse")
    summary: RegistryResponse = registry_response_of(registry)
    result = RetrieveDocumentSetResponse(status=summary.status, errors=summary.errors)
    for el in body.iterfind(_XDS + "DocumentResponse"):
        repository_id = (el.findtext(_XDS + "RepositoryUniqueId") or "").strip()
        document_id = (el.findtext(_XDS + "DocumentUniqueId") or "").strip()
        mime_type = (el.findtext(_XDS + "mimeType") or "application/octet-stream").strip()
        home = el.findtext(_XDS + "HomeCommunityId")
        document = el.find(_XDS + "Document")
        if document is None:
            raise RepositoryFault(f"DocumentResponse {document_id} has no xds:Document")
        if isinstance(targets, Path):
            target = targets / _file_name(document_id, mime_type)
        elif (repository_id, document_id) in targets:
            target = targets[(repository_id, document_id)]
        else:
            continue  # not asked for; its spooled part is deleted with the message
        content = _content(document, message, spool_dir)
        _move(content.path, target)
        result.documents.append(DocumentResponse(
            repository_unique_id=repository_id, document_unique_id=document_id,
            home_community_id=home.strip() if home else None, mime_type=mime_type, path=target,
            size=content.size, sha1=content.sha1, sha256=content.sha256))
    return result


def _content(document: Element, message: MtomMessage, spool_dir: Path) -> Attachment:
    try:
        return resolve_xop(document, message.attachments) or decode_inline(document, spool_dir)
    except SoapFault as fault:
        raise RepositoryFault(f"document content: {fault.reason}") from None


def _file_name(document_unique_id: str, mime_type: str) -> str:
    extension = mimetypes.guess_extension(mime_type.split(";")[0].strip(), strict=False) or ""
    return _UNSAFE.sub("_", document_unique_id) + extension


def _move(spooled: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Spool files are private (mkstemp, 0600); a saved document gets the usual umask mode.
    umask = os.umask(0o077)
    os.umask(umask)
    spooled.chmod(0o666 & ~umask)
    try:
        os.replace(spooled, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Per-document paths on another file system than the spool: one copy is unavoidable.
        shutil.move(spooled, target)
