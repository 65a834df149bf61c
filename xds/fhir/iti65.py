"""ITI-65 Provide Document Bundle (MHD Document Recipient), done as ITI-41 of this repository.

The transaction Bundle is read and mapped to XDS metadata by ``xds.fhir.mhdin``; each
document's base64 (Binary.data or attachment.data) is decoded into a spool file, checked against
attachment.hash / attachment.size, and the whole goes to ``provide_and_register`` as an MTOM-like
ProvideAndRegisterDocumentSetRequest (an xds:Document with an xop:Include per spool file). That
does the repository's checks, storage and ITI-42 registration atomically; spool files it did not
adopt are deleted here in any case.

Answers: 200 ``transaction-response`` with one ``201 Created`` entry per request entry, in order
(``DocumentReference/<entryUUID>``, ``List/<entryUUID>``, ``Binary/<entryUUID of its
DocumentReference>``, ids without ``urn:uuid:``). Errors are OperationOutcomes with the XDS error
code in ``issue.details`` and its location (the Bundle entry of an entryUUID) in
``issue.expression`` or the diagnostics. XDS error codes map to HTTP statuses so:

- 400 ``invalid``: the Bundle cannot be mapped (not a transaction, no or two SubmissionSet Lists,
  no DocumentReference, content without bytes, bad base64) and every metadata error
  (XDSRegistryMetadataError, XDSRepositoryMetadataError, XDSMissingDocument[Metadata],
  duplicate uniqueIds within the message, and any code not listed below);
- 409 ``duplicate`` / ``conflict``: XDSDuplicateUniqueIdInRegistry, and XDSNonIdenticalHash /
  XDSNonIdenticalSize (the uniqueId is already stored with other bytes);
- 422 ``processing``: the request is well-formed but its content refused (FHIR transaction
  business rules, as MHD asks): attachment.hash or attachment.size not those of the bytes
  (XDSRepositoryMetadataError), XDSUnknownPatientId, XDSPatientIdDoesNotMatch,
  XDSRegistryDeprecatedDocumentError, UnresolvedReferenceException;
- 503 ``transient``: busy / out of resources / registry not available;
- 500 ``exception``: XDSRegistryError, XDSRepositoryError (unexpected exceptions are the
  framework's 500).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from xds.ebrim.submission import build_submit_objects_request
from xds.ebrim.vocabulary import NS_XDS
from xds.fhir.context import FhirContext
from xds.fhir.errors import FhirError, Issue
from xds.fhir.identity import identity_of
from xds.fhir.ids import domain_of_system, parse_patient_id
from xds.fhir.mhdin import Document, Json, Parsed, PatientResolver, bad, hash_hex, read_bundle, submission_of
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.mpi.model import PatientIdentifier
from xds.repository.iti41 import provide_and_register
from xds.soap import Addressing, Attachment, SoapFault, SoapRequest, xop_include
from xds.soap.spool import Spool

__all__ = ["provide_bundle", "STATUS_OF"]

log = logging.getLogger("xds.fhir.iti65")

ITI41_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
RESPONSE_PROFILE = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/" \
                   "IHE.MHD.ProvideDocumentBundleResponse"
_CHUNK = 64 * 1024
_E = ErrorCode
#: HTTP status and IssueType of an XDS error code (400 ``invalid`` when not listed).
STATUS_OF: dict[ErrorCode, tuple[int, str]] = {
    _E.XDSDuplicateUniqueIdInRegistry: (409, "duplicate"),
    _E.XDSNonIdenticalHash: (409, "conflict"),
    _E.XDSNonIdenticalSize: (409, "conflict"),
    _E.XDSUnknownPatientId: (422, "processing"),
    _E.XDSPatientIdDoesNotMatch: (422, "processing"),
    _E.XDSRegistryDeprecatedDocumentError: (422, "processing"),
    _E.UnresolvedReferenceException: (422, "processing"),
    _E.XDSRegistryBusy: (503, "transient"),
    _E.XDSRepositoryBusy: (503, "transient"),
    _E.XDSRegistryOutOfResources: (503, "transient"),
    _E.XDSRepositoryOutOfResources: (503, "transient"),
    _E.XDSRegistryNotAvailable: (503, "transient"),
    _E.XDSRegistryError: (500, "exception"),
    _E.XDSRepositoryError: (500, "exception"),
}


def provide_bundle(ctx: FhirContext, bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, transaction-response Bundle) for the ITI-65 ``bundle``.

    Raises FhirError (see the module docstring for the statuses).
    """
    repository = ctx.repository
    if repository is None:
        raise FhirError(405, Issue("not-supported", "no Document Recipient here"))
    parsed = read_bundle(bundle)
    attachments: dict[str, Attachment] = {}
    try:
        for doc in parsed.documents:
            attachments[doc.entry_uuid] = _spool(ctx, doc)
        hashes = {d.entry_uuid: _checked_hash(d, attachments[d.entry_uuid])
                  for d in parsed.documents}
        submission = submission_of(parsed, _patient_resolver(ctx), hashes)
        request = _request(ctx, build_submit_objects_request(submission), attachments)
        try:
            warnings = provide_and_register(repository, request)
        except XdsError as exc:
            raise _fhir_error(exc, parsed) from None
    finally:
        for attachment in attachments.values():
            attachment.path.unlink(missing_ok=True)
    for warning in warnings:
        log.warning("ITI-65 registry warning %s: %s", warning.code, warning.context)
    return 200, _response(parsed)


def _spool(ctx: FhirContext, doc: Document) -> Attachment:
    """The document's base64 decoded into a spool file (chunk by chunk)."""
    spool = Spool(ctx.settings.spool_dir, base64_encoded=True)
    try:
        for offset in range(0, len(doc.data), _CHUNK):
            spool.write(doc.data[offset:offset + _CHUNK].encode("ascii", "replace"))
        return spool.finish(f"{doc.entry_uuid[9:]}@fhir.xds", doc.content_type or
                            "application/octet-stream")
    except SoapFault as exc:
        spool.discard()
        where = f"Bundle.entry[{doc.binary_index if doc.binary_index is not None else doc.index}]"
        raise bad(f"the document's data is not base64: {exc}", where) from None
    except BaseException:
        spool.discard()
        raise


def _checked_hash(doc: Document, content: Attachment) -> str | None:
    """attachment.hash as hex after checking hash and size against the bytes (422)."""
    where = f"Bundle.entry[{doc.index}].resource.content[0].attachment"
    attachment = (doc.resource.get("content") or [{}])[0].get("attachment") or {}
    given = hash_hex(attachment.get("hash"), where + ".hash")
    if given is not None and given != content.sha1:
        raise _mismatch(f"attachment.hash (SHA-1 {given}) is not the SHA-1 of the document "
                        f"({content.sha1})", where + ".hash")
    size = attachment.get("size")
    if size is not None and size != content.size:
        raise _mismatch(f"attachment.size {size} is not the document's {content.size} octets",
                        where + ".size")
    return given


def _mismatch(text: str, where: str) -> FhirError:
    return FhirError(422, Issue("processing", text, expression=where,
                                ihe_code=ErrorCode.XDSRepositoryMetadataError))


def _patient_resolver(ctx: FhirContext) -> PatientResolver:
    """A ``PatientResolver``: the affinity-domain CX of a resource's ``subject``."""

    def resolve(resource: Json, where: str) -> str:
        subject = resource.get("subject") or {}
        pid = _subject_id(subject)
        if pid is None:
            raise bad("subject must be Patient/<id> or an identifier urn:oid:<domain>|<id>",
                      where + ".subject")
        affinity = ctx.settings.affinity_domain
        if pid.domain == affinity:
            return pid.cx  # the registry answers for a patient it does not know
        identity = identity_of(ctx, pid)
        ids = identity.affinity_ids(affinity) if identity is not None else []
        if not ids:
            raise FhirError(422, Issue("processing", f"patient {pid.cx} has no identifier in "
                                       f"the affinity domain {affinity}",
                                       expression=where + ".subject",
                                       ihe_code=ErrorCode.XDSUnknownPatientId))
        return ids[0]

    return resolve


def _subject_id(subject: Json) -> PatientIdentifier | None:
    identifier = subject.get("identifier") or {}
    if identifier.get("system") and identifier.get("value"):
        domain = domain_of_system(identifier["system"])
        return PatientIdentifier(domain, identifier["value"]) if domain else None
    ref = (subject.get("reference") or "").rstrip("/").split("/")
    if len(ref) >= 2 and ref[-2] == "Patient":
        return parse_patient_id(ref[-1])
    return None


def _request(ctx: FhirContext, sor: etree._Element,
             attachments: dict[str, Attachment]) -> SoapRequest:
    """The ITI-41 request: the SubmitObjectsRequest and an xds:Document per attachment."""
    body = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest",
                         nsmap={"xds": NS_XDS})
    body.append(sor)
    for entry_uuid, attachment in attachments.items():
        doc = etree.SubElement(body, f"{{{NS_XDS}}}Document", id=entry_uuid)
        doc.append(xop_include(attachment.content_id))
    return SoapRequest(addressing=Addressing(action=ITI41_ACTION), body=body, envelope=body,
                       attachments={a.content_id: a for a in attachments.values()}, mtom=True,
                       client="fhir", spool_dir=ctx.settings.spool_dir)


def _fhir_error(exc: XdsError, parsed: Parsed) -> FhirError:
    """The OperationOutcome of an XDS failure: one issue per RegistryError."""
    where = {d.entry_uuid: f"Bundle.entry[{d.index}]" for d in parsed.documents}
    for mhd_list in (parsed.submission_set, *parsed.folders):
        where[mhd_list.entry_uuid] = f"Bundle.entry[{mhd_list.index}]"
    status, _ = STATUS_OF.get(exc.code, (400, "invalid"))
    return FhirError(status, *(_issue(e, where) for e in exc.errors))


def _issue(error: RegistryError, where: dict[str, str]) -> Issue:
    _, code = STATUS_OF.get(error.code, (400, "invalid"))
    severity = "warning" if error.severity.name == "Warning" else "error"
    location = where.get(error.location)
    text = error.context
    if error.location and location is None:
        text = f"{text} (at {error.location})"
    return Issue(code, text, severity=severity, ihe_code=error.code, expression=location)


def _response(parsed: Parsed) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return {"resourceType": "Bundle", "meta": {"profile": [RESPONSE_PROFILE]},
            "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created", "location": location,
                                    "lastModified": now}} for location in parsed.locations]}
