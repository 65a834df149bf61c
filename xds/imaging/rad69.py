"""RAD-69 Retrieve Imaging Document Set, Imaging Document Source side (RAD TF-3 §4.69.4):
the requested SOP Instances as Part-10 files in an accepted transfer syntax, streamed as MTOM
parts of an ITI-43-shaped RetrieveDocumentSetResponse.

Error codes (per DocumentRequest, ``location`` = the requested SOP Instance UID):

* another RepositoryUniqueId than this source's: ``XDSUnknownRepositoryId``;
* an instance not indexed here, held in another study or series than the request names, or
  whose bytes are gone: ``XDSDocumentUniqueIdError`` (the NIST test kit's expectation;
  dcm4chee sends XDSMissingDocument);
* none of the requested transfer syntaxes can be produced (an empty list included):
  ``XDSRepositoryError`` "cannot encode ... in any of the requested transfer syntaxes".

A malformed request (wrong body element, no StudyRequest/SeriesRequest/DocumentRequest, an
empty study or series UID, a DocumentRequest without ids, no TransferSyntaxUIDList) is
answered Failure with one ``XDSRepositoryError`` without location, as ITI-43 here does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass


from xds.audit.imaging_events import InstanceRef, transferred_events
from xds.audit.transactions import record_after
from xds.dicom.uids import DICOM_MIME
from xds.ebrim.rim import Element
from xds.ebrim.vocabulary import NS_RAD, NS_XDS
from xds.imaging.content import ANY_SYNTAX, instance_content
from xds.imaging.context import ImagingSource
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.soap import OutgoingAttachment, SoapResponse, new_content_id
from xds.repository.iti43 import document_response, retrieve_response
from xds.store.blobs import StoreUnavailable
from xds.store.db import read_connection
from xds.mpi.model import PatientIdentifier
from xds.store.instances import Instance, find_instances

__all__ = ["retrieve_imaging_document_set"]

log = logging.getLogger("xds.imaging.rad69")

_RAD = f"{{{NS_RAD}}}"
_XDS = f"{{{NS_XDS}}}"


@dataclass(frozen=True, slots=True)
class _Request:
    study_uid: str
    series_uid: str
    home_community_id: str | None
    repository_unique_id: str
    sop_instance_uid: str


def retrieve_imaging_document_set(source: ImagingSource, body: Element) -> SoapResponse:
    """The RetrieveDocumentSetResponse for the RAD-69 request ``body``.

    Status Success, PartialSuccess or Failure as for ITI-43. Raises XdsError for a malformed
    request.
    """
    try:
        requests, syntaxes = _parse(body)
    except XdsError as exc:
        _audit(source, [], [], exc.errors)
        raise
    ours = [r for r in requests if r.repository_unique_id == source.unique_id]
    with read_connection(source.engine) as conn:
        found = find_instances(conn, [r.sop_instance_uid for r in ours])
    errors: list[RegistryError] = []
    responses: list[Element] = []
    attachments: list[OutgoingAttachment] = []
    for req in requests:
        uid = req.sop_instance_uid
        if req.repository_unique_id != source.unique_id:
            errors.append(RegistryError(
                code=ErrorCode.XDSUnknownRepositoryId, location=uid,
                context=f"repositoryUniqueId {req.repository_unique_id} is not this Imaging "
                        f"Document Source ({source.unique_id})"))
            continue
        instance = found.get(uid)
        if instance is None or not instance.in_series(req.study_uid, req.series_uid):
            where = "" if instance is None else " in that study and series"
            errors.append(RegistryError(
                code=ErrorCode.XDSDocumentUniqueIdError, location=uid,
                context=f"DICOM object {uid} not found{where} (study {req.study_uid}, "
                        f"series {req.series_uid})"))
            continue
        try:
            content = instance_content(source, instance, syntaxes) if syntaxes else None
        except FileNotFoundError as exc:
            log.warning("RAD-69: %s", exc)
            errors.append(RegistryError(
                code=ErrorCode.XDSDocumentUniqueIdError, location=uid,
                context=f"DICOM object {uid} is no longer available"))
            continue
        except StoreUnavailable as exc:
            log.warning("RAD-69: %s", exc)
            errors.append(RegistryError(
                code=ErrorCode.XDSRepositoryError, location=uid,
                context=f"DICOM object {uid}: the image store is unavailable; retry later"))
            continue
        if content is None:
            errors.append(RegistryError(
                code=ErrorCode.XDSRepositoryError, location=uid,
                context=f"cannot encode {uid} (stored as {instance.transfer_syntax_uid or 'unknown'})"
                        f" in any of the requested transfer syntaxes {list(syntaxes)}"))
            continue
        content_id = new_content_id()
        responses.append(_document_response(req, content_id))
        attachments.append(OutgoingAttachment(
            content_id=content_id, content_type=DICOM_MIME, size=content.size,
            open=content.open))
    log.info("RAD-69 %d requested, %d returned", len(requests), len(responses))
    failed = {e.location for e in errors}
    refs = [(req.sop_instance_uid in failed, _ref(req, found.get(req.sop_instance_uid)))
            for req in requests]
    _audit(source, [r for bad, r in refs if not bad], [r for bad, r in refs if bad], errors)
    return SoapResponse(body=retrieve_response(errors, responses), attachments=attachments)


def _ref(req: _Request, instance: Instance | None) -> InstanceRef:
    patient = "" if instance is None or not instance.patient_id else \
        PatientIdentifier(instance.patient_issuer, instance.patient_id).cx
    return InstanceRef(req.study_uid, req.series_uid, req.sop_instance_uid, patient,
                       req.repository_unique_id, req.home_community_id or "")


def _audit(source: ImagingSource, delivered: list[InstanceRef], failed: list[InstanceRef],
           errors: list[RegistryError]) -> None:
    """DICOM Instances Transferred: the delivered instances, and those not (RAD-69 server)."""
    text = "; ".join(f"{e.code} {e.context}" for e in errors)[:1000]
    record_after(source.engine, source.settings, lambda: transferred_events(
        source.settings, "RAD-69", delivered, failed, description=text))


def _malformed(context: str) -> XdsError:
    return XdsError(ErrorCode.XDSRepositoryError, f"malformed RetrieveImagingDocumentSetRequest: "
                                                  f"{context}")


def _parse(body: Element) -> tuple[list[_Request], list[str]]:
    """The DocumentRequests of ``body`` in order, and the requested transfer syntaxes."""
    if body.tag != _RAD + "RetrieveImagingDocumentSetRequest":
        raise _malformed(f"expected iherad:RetrieveImagingDocumentSetRequest, got {body.tag}")
    requests: list[_Request] = []
    studies = body.findall(_RAD + "StudyRequest")
    if not studies:
        raise _malformed("no StudyRequest")
    for study in studies:
        study_uid = (study.get("studyInstanceUID") or "").strip()
        if not study_uid:
            raise _malformed("a StudyRequest has an empty studyInstanceUID")
        series_list = study.findall(_RAD + "SeriesRequest")
        if not series_list:
            raise _malformed(f"StudyRequest {study_uid} has no SeriesRequest")
        for series in series_list:
            series_uid = (series.get("seriesInstanceUID") or "").strip()
            if not series_uid:
                raise _malformed(f"a SeriesRequest of study {study_uid} has an empty "
                                 "seriesInstanceUID")
            documents = list(_document_requests(series))
            if not documents:
                raise _malformed(f"SeriesRequest {series_uid} has no xdsb:DocumentRequest")
            requests += [_request(study_uid, series_uid, el) for el in documents]
    syntax_list = body.find(_RAD + "TransferSyntaxUIDList")
    if syntax_list is None:
        raise _malformed("no TransferSyntaxUIDList")
    # "*" is this server's internal "as stored" marker, not a transfer syntax a consumer may ask.
    syntaxes = [ts for el in syntax_list.iterfind(_RAD + "TransferSyntaxUID")
                if (ts := (el.text or "").strip()) and ts != ANY_SYNTAX]
    return requests, list(dict.fromkeys(syntaxes))


def _document_requests(series: Element) -> Iterator[Element]:
    """The DocumentRequests of a SeriesRequest: xds-b as in the official XSD; the iherad
    namespace of IPF's early bundled schema is tolerated (digest §6 item 1)."""
    for el in series:
        if el.tag in (_XDS + "DocumentRequest", _RAD + "DocumentRequest"):
            yield el


def _request(study_uid: str, series_uid: str, el: Element) -> _Request:
    ns = el.tag[:el.tag.index("}") + 1]
    repository_id = (el.findtext(ns + "RepositoryUniqueId") or "").strip()
    sop_uid = (el.findtext(ns + "DocumentUniqueId") or "").strip()
    if not repository_id or not sop_uid:
        raise _malformed("a DocumentRequest needs RepositoryUniqueId and DocumentUniqueId")
    home = el.findtext(ns + "HomeCommunityId")
    return _Request(study_uid, series_uid, home.strip() if home else None, repository_id, sop_uid)


def _document_response(req: _Request, content_id: str) -> Element:
    """One DocumentResponse: the request's ids echoed, the instance as an xop:Include."""
    return document_response(req.home_community_id, req.repository_unique_id,
                             req.sop_instance_uid, DICOM_MIME, content_id)
