"""ITI-41 Provide and Register Document Set-b, repository side (ITI TF-2 §3.41.4.1.3).

Documents arrive spooled to disk by the SOAP layer (MTOM) or inline in base64; each is checked
against its metadata, moved into the blob store and recorded, made retrievable, and only then
registered with ITI-42. If registration fails, what this submission added is removed again.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, and_, update
from sqlalchemy.exc import IntegrityError

from xds.audit.events import REQUEST, AuditEvent, Outcome, RequestInfo
from xds.audit.transactions import local_host, record_after
from xds.audit.xds_events import export_event, import_event
from xds.ebrim.rim import RIM, Element, set_slot, slot_values
from xds.ebrim.vocabulary import DE, NS_LCM, NS_XDS
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.model.values import now_dtm
from xds.soap import Attachment, SoapRequest, decode_inline, resolve_xop
from xds.store import documents
from xds.store.blobs import BlobInfo, StoreFull, StoreUnavailable
from xds.store.db import write_transaction
from xds.store.tables import repository_document
from xds.repository.context import Repository

__all__ = ["provide_and_register"]

log = logging.getLogger("xds.repository.iti41")
_XDS = f"{{{NS_XDS}}}"
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Where xds.app mounts the two actors (the audit names the endpoints).
_REPOSITORY_PATH, _REGISTRY_PATH = "/xds/repository", "/xds/registry"


@dataclass(slots=True)
class _Document:
    entry_id: str
    unique_id: str
    mime_type: str
    content: Attachment


def provide_and_register(repository: Repository, request: SoapRequest) -> list[RegistryError]:
    """Store the documents of ``request``, then register their metadata.

    Returns the registry's warnings; raises XdsError with XDSMissingDocument,
    XDSMissingDocumentMetadata, XDSRepositoryMetadataError, XDSRepositoryDuplicateUniqueIdInMessage,
    XDSNonIdenticalHash / XDSNonIdenticalSize, XDSRepositoryOutOfResources, or whatever the
    registry answered (relayed unchanged). Audited as ITI-41 Import (and the ITI-42 sent as
    Export), success or failure.
    """
    body = request.body
    submission = body.find(f"{{{NS_LCM}}}SubmitObjectsRequest")
    audited = submission if submission is not None else body
    try:
        warnings = _provide_and_register(repository, request)
    except XdsError as exc:
        _audit(repository, audited, errors=exc.errors)
        raise
    except Exception as exc:
        _audit(repository, audited, outcome=Outcome.MAJOR_FAILURE,
               description=f"internal error ({type(exc).__name__})")
        raise
    _audit(repository, audited, outcome=Outcome.SUCCESS)
    return warnings


def _audit(repository: Repository, submission: Element, *,
           export_to: tuple[str, str] | None = None, errors: Sequence[RegistryError] = (),
           outcome: Outcome | None = None, description: str = "") -> None:
    """ITI-41 Import as received, or (``export_to`` = (our URL, the registry's)) ITI-42 Export."""
    settings = repository.settings

    def build() -> AuditEvent:
        if export_to is None:
            return import_event(settings, "ITI-41", submission, errors, outcome=outcome,
                                description=description)
        return export_event(settings, "ITI-42", submission, *export_to, errors, outcome=outcome,
                            description=description)

    record_after(repository.engine, settings, build)


def _register(repository: Repository, submission: Element) -> list[RegistryError]:
    """ITI-42 to the registry, audited as Export; in this process the registry's own audit
    sees the repository as its client."""
    settings = repository.settings
    ours = settings.base_url + _REPOSITORY_PATH
    url = getattr(repository.register, "url", None)
    outer = REQUEST.get()
    token = None if url else REQUEST.set(RequestInfo(
        client=local_host(settings), endpoint=settings.base_url + _REGISTRY_PATH,
        requestor=outer.requestor if outer else None, client_endpoint=ours))
    route = (ours, url or settings.base_url + _REGISTRY_PATH)
    try:
        warnings = repository.register(submission)
    except XdsError as exc:
        _audit(repository, submission, export_to=route, errors=exc.errors)
        raise
    except Exception as exc:
        _audit(repository, submission, export_to=route, outcome=Outcome.MAJOR_FAILURE,
               description=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if token is not None:
            REQUEST.reset(token)
    _audit(repository, submission, export_to=route, outcome=Outcome.SUCCESS)
    return warnings


def _provide_and_register(repository: Repository, request: SoapRequest) -> list[RegistryError]:
    body = request.body
    if body.tag != _XDS + "ProvideAndRegisterDocumentSetRequest":
        raise _metadata(f"expected xds:ProvideAndRegisterDocumentSetRequest, got {body.tag}")
    submission = body.find(f"{{{NS_LCM}}}SubmitObjectsRequest")
    if submission is None:
        raise _metadata("ProvideAndRegisterDocumentSetRequest has no lcm:SubmitObjectsRequest")
    inline: list[Path] = []
    try:
        pending = _pair(request, body, submission, inline)
        for doc, eo in pending:
            _complete_metadata(repository, doc, eo)
        added = _store(repository, [doc for doc, _ in pending])
    finally:
        # Inline documents are decoded into the spool here, not by the SOAP layer, so the
        # endpoint's cleanup does not know them; the adopted ones have already moved away.
        for path in inline:
            path.unlink(missing_ok=True)
    try:
        warnings = _register(repository, submission)
    except BaseException:
        _remove(repository, added)
        raise
    log.info("ITI-41 stored and registered %d documents (%d new blobs)", len(pending),
             len(added.blobs))
    return warnings


def _metadata(text: str) -> XdsError:
    return XdsError(ErrorCode.XDSRepositoryMetadataError, text)


def _pair(request: SoapRequest, body: Element, submission: Element,
          inline: list[Path]) -> list[tuple[_Document, Element]]:
    """Each xds:Document with its ExtrinsicObject (ITI TF-2 §3.41.4.1.3 step 1); the spool
    files of inline documents are added to ``inline``."""
    contents: dict[str, Attachment] = {}
    for doc_el in body.iterfind(_XDS + "Document"):
        doc_id = doc_el.get("id") or ""
        if not doc_id:
            raise _metadata("xds:Document without id")
        if doc_id in contents:
            raise _metadata(f"two xds:Document elements have id {doc_id}")
        contents[doc_id] = _content(request, doc_el, doc_id, inline)
    entries = {eo.get("id") or "": eo for eo in submission.iterfind(
        f"{RIM}RegistryObjectList/{RIM}ExtrinsicObject")}
    for entry_id in entries:
        if entry_id not in contents:
            raise XdsError(ErrorCode.XDSMissingDocument,
                           f"DocumentEntry {entry_id} has no xds:Document", location=entry_id)
    for doc_id in contents:
        if doc_id not in entries:
            raise XdsError(ErrorCode.XDSMissingDocumentMetadata,
                           f"xds:Document {doc_id} has no DocumentEntry", location=doc_id)
    # A MIME part that no xds:Document includes is bytes without metadata too (TF-3 Table
    # 4.2.4.1-2: "MIME part / Document with no DocumentEntry").
    included = {a.content_id for a in contents.values()}
    for content_id in request.attachments:
        if content_id not in included:
            raise XdsError(ErrorCode.XDSMissingDocumentMetadata,
                           f"MIME part <{content_id}> is included by no xds:Document",
                           location=content_id)
    pending = []
    seen: set[str] = set()
    for entry_id, eo in entries.items():
        unique_id = _unique_id(eo, entry_id)
        if unique_id in seen:
            raise XdsError(ErrorCode.XDSRepositoryDuplicateUniqueIdInMessage, unique_id)
        seen.add(unique_id)
        mime_type = eo.get("mimeType") or ""
        if not mime_type:
            raise _metadata(f"DocumentEntry {entry_id} has no mimeType")
        pending.append((_Document(entry_id, unique_id, mime_type, contents[entry_id]), eo))
    return pending


def _content(request: SoapRequest, doc_el: Element, doc_id: str,
             inline: list[Path]) -> Attachment:
    try:
        attachment = resolve_xop(doc_el, request.attachments)
    except Exception as exc:  # an href that names no MIME part of this message
        raise XdsError(ErrorCode.XDSMissingDocument,
                       f"xds:Document {doc_id}: {exc}", location=doc_id) from None
    if attachment is not None:
        return attachment
    try:
        decoded = decode_inline(doc_el, request.spool_dir)
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise
        raise XdsError(ErrorCode.XDSRepositoryOutOfResources,
                       f"no room to decode xds:Document {doc_id}", location=doc_id) from None
    inline.append(decoded.path)
    return decoded


def _unique_id(eo: Element, entry_id: str) -> str:
    for ei in eo.iterchildren(RIM + "ExternalIdentifier"):
        if ei.get("identificationScheme") == DE.uniqueId and ei.get("value"):
            return ei.get("value") or ""
    raise _metadata(f"DocumentEntry {entry_id} has no uniqueId")


def _complete_metadata(repository: Repository, doc: _Document, eo: Element) -> None:
    """Verify a supplied hash and size; set hash, size and repositoryUniqueId (step 2-3)."""
    content = doc.content
    hashes = slot_values(eo, "hash")
    if hashes is not None and [h.lower() for h in hashes] != [content.sha1]:
        raise _metadata(f"DocumentEntry {doc.entry_id}: hash {','.join(hashes)} is not the SHA-1 "
                        f"of the document ({content.sha1})")
    sizes = slot_values(eo, "size")
    if sizes is not None and sizes != [str(content.size)]:
        raise _metadata(f"DocumentEntry {doc.entry_id}: size {','.join(sizes)} is not the "
                        f"document's {content.size} octets")
    set_slot(eo, "hash", [content.sha1])
    set_slot(eo, "size", [str(content.size)])
    set_slot(eo, "repositoryUniqueId", [repository.unique_id])


@dataclass(slots=True)
class _Added:
    """What one submission added: new blobs (by SHA-256) and new document rows (by uniqueId)."""

    blobs: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)


def _store(repository: Repository, docs: list[_Document]) -> _Added:
    """Blobs in place and rows committed, so documents are retrievable before ITI-42."""
    added = _Added()
    try:
        for doc in docs:
            c = doc.content
            if repository.blobs.adopt(c.path, BlobInfo(c.sha256, c.sha1, c.size)):
                added.blobs.append(c.sha256)
        with write_transaction(repository.engine) as conn:
            known = documents.find_documents(conn, repository.unique_id,
                                             [d.unique_id for d in docs])
            fresh = []
            for doc in docs:
                old = known.get(doc.unique_id)
                if old is None:
                    fresh.append(documents.StoredDocument(
                        repository.unique_id, doc.unique_id, doc.content.sha256,
                        doc.content.sha1, doc.content.size, doc.mime_type))
                elif old.sha1 != doc.content.sha1:
                    raise XdsError(ErrorCode.XDSNonIdenticalHash, doc.unique_id)
                elif old.size != doc.content.size:
                    raise XdsError(ErrorCode.XDSNonIdenticalSize, doc.unique_id)
            documents.insert_documents(conn, fresh)
            _refresh(conn, repository.unique_id, list(known))
            # Bytes we found already stored may have been removed meanwhile (by a failed
            # submission that had added them, or by ``xds blobs gc``); deleters hold the blob
            # lock while they check for rows, so checking under it, after our rows, closes
            # that window: either they see our rows or we see the bytes gone.
            documents.lock_blobs(conn, [d.content.sha256 for d in docs])
            for doc in docs:
                if not repository.blobs.exists(doc.content.sha256):
                    raise XdsError(ErrorCode.XDSRepositoryBusy,
                                   f"document {doc.unique_id}: stored bytes were removed by a "
                                   "concurrent failed submission; retry")
        # A document already stored with identical bytes keeps its row; only ours are undone.
        added.rows = [d.document_unique_id for d in fresh]
        return added
    except StoreFull:
        _remove(repository, added)
        raise XdsError(ErrorCode.XDSRepositoryOutOfResources,
                       "the document store is full") from None
    except StoreUnavailable as exc:
        log.warning("ITI-41: %s", exc)
        _remove(repository, added)
        raise XdsError(ErrorCode.XDSRepositoryError,
                       "the document store is unavailable; nothing was stored, retry later") \
            from None
    except IntegrityError:
        _remove(repository, added)
        raise XdsError(ErrorCode.XDSRepositoryBusy,
                       "a concurrent submission stored the same uniqueId; retry") from None
    except BaseException:
        _remove(repository, added)
        raise


def _refresh(conn: Connection, repository_unique_id: str, unique_ids: list[str]) -> None:
    """Make the rows found for ``unique_ids`` new again. A row found is maybe what a crash
    between store and register left, found by the client's retry; ``xds blobs gc`` drops such
    a row once it is old, and must not while this retry waits for the registry. A row gc
    dropped since we read it makes this submission XDSRepositoryBusy (retry)."""
    if not unique_ids:
        return
    doc = repository_document.c
    result = conn.execute(update(repository_document).where(and_(
        doc.repository_unique_id == repository_unique_id,
        doc.document_unique_id.in_(sorted(set(unique_ids))))).values(created=now_dtm()))
    if result.rowcount != len(set(unique_ids)):
        raise XdsError(ErrorCode.XDSRepositoryBusy,
                       "a stored document was removed concurrently (xds blobs gc); retry")


def _remove(repository: Repository, added: _Added) -> None:
    """Undo ``_store``: our rows, then each blob we added that no row refers to any more."""
    with write_transaction(repository.engine) as conn:
        documents.delete_documents(conn, repository.unique_id, added.rows)
        try:
            documents.delete_unreferenced(conn, repository.blobs, added.blobs)
        except StoreUnavailable as exc:  # no row refers to them: xds blobs gc will
            log.warning("ITI-41: blobs %s left for 'xds blobs gc': %s", added.blobs, exc)
