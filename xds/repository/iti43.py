"""ITI-43 Retrieve Document Set, repository side (ITI TF-2 §3.43.4): documents streamed as MTOM parts."""

from __future__ import annotations

import logging
from functools import partial
from dataclasses import dataclass

from lxml import etree

from xds.audit.transactions import record_after
from xds.audit.xds_events import retrieve_events
from xds.ebrim.response import registry_response, response_status
from xds.ebrim.rim import Element
from xds.ebrim.vocabulary import NS_XDS
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.repository.context import Repository
from xds.soap import OutgoingAttachment, SoapResponse, new_content_id, xop_include
from xds.store import documents
from xds.store.blobs import StoreUnavailable
from xds.store.db import read_connection

__all__ = ["retrieve_document_set", "document_response", "retrieve_response", "retrieve_failure"]

log = logging.getLogger("xds.repository.iti43")
_XDS = f"{{{NS_XDS}}}"


@dataclass(frozen=True, slots=True)
class _Request:
    home_community_id: str | None
    repository_unique_id: str
    document_unique_id: str


def retrieve_document_set(repository: Repository, body: Element) -> SoapResponse:
    """The RetrieveDocumentSetResponse for ``body``, each found document as an attachment.

    Unknown documents get XDSDocumentUniqueIdError and another repository's id
    XDSUnknownRepositoryId, each with ``location`` = the DocumentUniqueId; the status is
    Success, PartialSuccess or Failure accordingly. Raises XdsError for a malformed request.
    """
    try:
        requests = _parse(body)
    except XdsError as exc:
        _audit(repository, [], [], exc.errors)
        raise
    errors: list[RegistryError] = []
    ours = [r for r in requests if r.repository_unique_id == repository.unique_id]
    with read_connection(repository.engine) as conn:
        found = documents.find_documents(conn, repository.unique_id,
                                         [r.document_unique_id for r in ours])
    responses: list[Element] = []
    attachments: list[OutgoingAttachment] = []
    for req in requests:
        doc = found.get(req.document_unique_id) if req in ours else None
        if req not in ours:
            errors.append(RegistryError(
                code=ErrorCode.XDSUnknownRepositoryId, location=req.document_unique_id,
                context=f"repositoryUniqueId {req.repository_unique_id} is not this repository "
                        f"({repository.unique_id})"))
        elif doc is None:
            errors.append(_not_held(repository, req))
        elif (problem := _unreadable(repository, req, doc)) is not None:
            errors.append(problem)
        else:
            content_id = new_content_id()
            responses.append(document_response(
                req.home_community_id, req.repository_unique_id, req.document_unique_id,
                doc.mime_type, content_id))
            attachments.append(OutgoingAttachment(
                content_id=content_id, content_type=doc.mime_type, size=doc.size,
                open=partial(repository.blobs.open, doc.sha256)))
    log.info("ITI-43 %d requested, %d returned", len(requests), len(responses))
    failed = {e.location for e in errors}
    _audit(repository, [_ids(r) for r in requests if r.document_unique_id not in failed],
           [_ids(r) for r in requests if r.document_unique_id in failed], errors)
    return SoapResponse(body=retrieve_response(errors, responses), attachments=attachments)


def _unreadable(repository: Repository, req: _Request,
                doc: documents.StoredDocument) -> RegistryError | None:
    """Why the bytes of ``doc`` cannot be sent: gone (XDSDocumentUniqueIdError) or their store
    is down (XDSRepositoryError, worth a retry); None when they can."""
    uid = req.document_unique_id
    try:
        if repository.blobs.exists(doc.sha256):
            return None
    except StoreUnavailable as exc:
        log.warning("ITI-43: %s", exc)
        return RegistryError(code=ErrorCode.XDSRepositoryError, location=uid,
                             context=f"document {uid}: the document store is unavailable; "
                                     "retry later")
    return _not_held(repository, req)


def _not_held(repository: Repository, req: _Request) -> RegistryError:
    uid = req.document_unique_id
    return RegistryError(code=ErrorCode.XDSDocumentUniqueIdError, location=uid,
                         context=f"document {uid} is not in repository {repository.unique_id}")


def _ids(req: _Request) -> tuple[str, str, str | None]:
    return req.document_unique_id, req.repository_unique_id, req.home_community_id


def _audit(repository: Repository, delivered: list[tuple[str, str, str | None]],
           failed: list[tuple[str, str, str | None]], errors: list[RegistryError]) -> None:
    settings = repository.settings
    record_after(repository.engine, settings,
                 lambda: retrieve_events(settings, delivered, failed, errors))


def retrieve_response(errors: list[RegistryError], responses: list[Element]) -> Element:
    """A RetrieveDocumentSetResponse (ITI-43, RAD-69): Success, PartialSuccess or Failure as
    ``errors`` and ``responses`` (DocumentResponse elements) say."""
    root = etree.Element(_XDS + "RetrieveDocumentSetResponse", nsmap={"xds": NS_XDS})
    root.append(registry_response(errors, response_status(errors, partial=bool(responses))))
    root.extend(responses)
    return root


def retrieve_failure(errors: list[RegistryError]) -> Element:
    """A RetrieveDocumentSetResponse carrying only a Failure RegistryResponse with ``errors``."""
    return retrieve_response(errors, [])


def _parse(body: Element) -> list[_Request]:
    if body.tag != _XDS + "RetrieveDocumentSetRequest":
        raise XdsError(ErrorCode.XDSRepositoryError,
                       f"expected xds:RetrieveDocumentSetRequest, got {body.tag}")
    requests = []
    for el in body.iterfind(_XDS + "DocumentRequest"):
        repository_id = (el.findtext(_XDS + "RepositoryUniqueId") or "").strip()
        document_id = (el.findtext(_XDS + "DocumentUniqueId") or "").strip()
        if not repository_id or not document_id:
            raise XdsError(ErrorCode.XDSRepositoryError,
                           "a DocumentRequest needs RepositoryUniqueId and DocumentUniqueId")
        home = el.findtext(_XDS + "HomeCommunityId")
        requests.append(_Request(home.strip() if home else None, repository_id, document_id))
    if not requests:
        raise XdsError(ErrorCode.XDSRepositoryError, "RetrieveDocumentSetRequest has no DocumentRequest")
    return requests


def document_response(home_community_id: str | None, repository_unique_id: str,
                      document_unique_id: str, mime_type: str, content_id: str) -> Element:
    """One DocumentResponse (ITI-43, RAD-69), children in XSD order, its Document an xop:Include."""
    el = etree.Element(_XDS + "DocumentResponse")
    if home_community_id is not None:
        etree.SubElement(el, _XDS + "HomeCommunityId").text = home_community_id
    etree.SubElement(el, _XDS + "RepositoryUniqueId").text = repository_unique_id
    etree.SubElement(el, _XDS + "DocumentUniqueId").text = document_unique_id
    etree.SubElement(el, _XDS + "mimeType").text = mime_type
    etree.SubElement(el, _XDS + "Document").append(xop_include(content_id))
    return el
