"""ITI-42 Register Document Set-b, registry side (ITI TF-2 §3.42.4.1.3): validate, store whole."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from xds.audit.events import Outcome
from xds.audit.transactions import record_after, record_in
from xds.audit.xds_events import import_event
from xds.ebrim.association import build_association
from xds.ebrim.documententry import build_document_entry
from xds.ebrim.folder import build_folder
from xds.ebrim.rim import Element
from xds.ebrim.submission import parse_submit_objects_request
from xds.ebrim.submissionset import build_submission_set
from xds.ebrim.vocabulary import (
    REPLACING_TYPES, AssociationType, DocumentEntryType, Status,
)
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.model.metadata import Association, DocumentEntry, Folder, Submission
from xds.model.values import new_uuid_urn, now_dtm
from xds.registry.context import Registry
from xds.registry.validate import extra_slots_not_saved, validate_submission
from xds.store import registry as index
from xds.store.db import write_transaction
from xds.store.patients import is_known, surviving, survivors

__all__ = ["register_document_set"]

log = logging.getLogger("xds.registry.iti42")
_ATTEMPTS = 3
_REGISTRY_ONLY_TARGETS = frozenset({
    AssociationType.RPLC, AssociationType.XFRM_RPLC, AssociationType.IsSnapshotOf})


def register_document_set(registry: Registry, body: Element) -> list[RegistryError]:
    """Register the SubmitObjectsRequest ``body`` whole, or nothing of it.

    Returns the warnings of a successful registration; raises XdsError with every error
    found otherwise (XDSRegistryMetadataError, XDSPatientIdDoesNotMatch, XDSUnknownPatientId,
    XDSRegistryDuplicateUniqueIdInMessage, XDSDuplicateUniqueIdInRegistry, XDSNonIdenticalHash,
    XDSNonIdenticalSize, UnresolvedReferenceException, XDSRegistryDeprecatedDocumentError).
    """
    try:
        return _register(registry, body)
    except XdsError as exc:
        _audit_failure(registry, body, exc.errors)
        raise
    except Exception as exc:
        _audit_failure(registry, body, [], f"internal error ({type(exc).__name__})")
        raise


def _audit_failure(registry: Registry, body: Element, errors: list[RegistryError],
                   description: str = "") -> None:
    """The failure record, in its own transaction: the submission's was rolled back."""
    settings = registry.settings
    outcome = None if errors else Outcome.MAJOR_FAILURE
    record_after(registry.engine, settings, lambda: import_event(
        settings, "ITI-42", body, errors, outcome=outcome, description=description))


def _register(registry: Registry, body: Element) -> list[RegistryError]:
    submission = parse_submit_objects_request(body)
    errors = validate_submission(submission)
    if errors:
        raise XdsError.of(errors)
    warnings = extra_slots_not_saved(submission)
    symbols = _assign_uuids(submission)
    # The XML is built before the transaction: writers queue for the database lock, so
    # nothing that does not need it runs while holding it.
    xml = _approve_and_build(submission)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with write_transaction(registry.engine) as conn:
                plan = _check(conn, submission)
                _store(conn, submission, plan, xml)
                # In the same transaction: a registered submission always has its audit record.
                record_in(conn, registry.settings, lambda: import_event(
                    registry.settings, "ITI-42", body, outcome=Outcome.SUCCESS))
            break
        except XdsError as exc:
            raise _in_senders_terms(exc, symbols) from None
        except IntegrityError:
            # A concurrent submission claimed one of our uniqueIds (or ids) first; checking
            # again now sees its rows and answers with the proper IHE error code.
            log.info("ITI-42 lost a uniqueId race, attempt %d", attempt)
            if attempt == _ATTEMPTS:
                raise XdsError(ErrorCode.XDSRegistryBusy,
                               "concurrent submissions conflicted") from None
    ss = submission.submission_set
    log.info("ITI-42 registered SubmissionSet %s (%s) with %d DocumentEntries, %d Folders",
             ss.entry_uuid, ss.unique_id, len(submission.document_entries),
             len(submission.folders))
    return warnings


def _in_senders_terms(exc: XdsError, symbols: dict[str, str]) -> XdsError:
    """``exc`` with each assigned UUID in its messages named by the sender's symbolic id too."""
    if not symbols:
        return exc

    def name(text: str) -> str:
        for uuid_urn, symbol in symbols.items():
            text = text.replace(uuid_urn, f"{symbol} ({uuid_urn})")
        return text

    return XdsError.of([dataclasses.replace(e, context=name(e.context), location=name(e.location))
                        for e in exc.errors])


def _assign_uuids(sub: Submission) -> dict[str, str]:
    """Replace symbolic ids with fresh UUIDs everywhere (ITI TF-2 §3.42.4.1.3.7).

    Returns assigned UUID -> symbolic id, to name objects in error messages as the sender does.
    """
    mapping: dict[str, str] = {}
    objects: list[DocumentEntry | Folder | Association] = [
        *sub.document_entries, *sub.folders, *sub.associations]
    for obj in [sub.submission_set, *objects]:
        if not obj.entry_uuid.startswith("urn:uuid:"):
            mapping[obj.entry_uuid] = new_uuid_urn()
            obj.entry_uuid = mapping[obj.entry_uuid]
    symbols = {uuid_urn: symbol for symbol, uuid_urn in mapping.items()}
    for assoc in sub.associations:
        for attr in ("source_object", "target_object"):
            ref = getattr(assoc, attr)
            if ref in mapping:
                setattr(assoc, attr, mapping[ref])
            elif not ref.startswith("urn:uuid:"):
                owner = symbols.get(assoc.entry_uuid, assoc.entry_uuid)
                raise XdsError(
                    ErrorCode.UnresolvedReferenceException,
                    f"Association {owner}: symbolic reference {ref} is not an object "
                    "of this submission")
    return symbols


@dataclass(slots=True)
class _Plan:
    """Effects decided by the checks, carried out by _store."""

    now: str
    new_unique_ids: list[index.UniqueIdClaim] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (new DE, replaced DE)
    folders_touched: set[str] = field(default_factory=set)


def _check(conn: Connection, sub: Submission) -> _Plan:
    ss = sub.submission_set
    patient_id = ss.patient_id or ""
    if not is_known(conn, patient_id):
        raise XdsError(ErrorCode.XDSUnknownPatientId, patient_id)
    plan = _Plan(now=now_dtm())
    submitted: dict[str, str] = {ss.entry_uuid: "SubmissionSet"}
    submitted |= {de.entry_uuid: "DocumentEntry" for de in sub.document_entries}
    submitted |= {fd.entry_uuid: "Folder" for fd in sub.folders}
    submitted |= {a.entry_uuid: "Association" for a in sub.associations}
    clash = index.find_objects(conn, submitted)
    if clash:
        raise XdsError(ErrorCode.XDSRegistryMetadataError,
                       f"id {next(iter(clash))} of a submitted object is already in the registry")
    _check_unique_ids(conn, sub, plan)
    referenced = {a.source_object for a in sub.associations}
    referenced |= {a.target_object for a in sub.associations}
    stored = index.find_objects(conn, referenced - submitted.keys())
    # Patient ids are compared as merged (ITI TF-2 §3.42.4.1.3.3.2, §3.42.4.1.3.5): an object
    # registered under a merged-away id counts as its survivor's.
    merged = survivors(conn, {o.patient_id for o in stored.values()}) if stored else {}
    stored = {ref: dataclasses.replace(o, patient_id=merged.get(o.patient_id, o.patient_id))
              for ref, o in stored.items()}
    _check_associations(sub, submitted, stored, plan)
    return plan


def _check_unique_ids(conn: Connection, sub: Submission, plan: _Plan) -> None:
    ss = sub.submission_set
    packages = [("SubmissionSet", ss.unique_id or "")]
    packages += [("Folder", fd.unique_id or "") for fd in sub.folders]
    claims = index.find_claims(
        conn, [uid for _, uid in packages] + [de.unique_id or "" for de in sub.document_entries])
    for kind, uid in packages:
        if uid in claims:
            raise XdsError(ErrorCode.XDSDuplicateUniqueIdInRegistry,
                           f"{kind} uniqueId {uid} is already used in the registry")
        plan.new_unique_ids.append(index.UniqueIdClaim(uid, kind, None, None))
    for de in sub.document_entries:
        uid, hash_, size = de.unique_id or "", (de.hash or "").lower(), int(de.size or 0)
        claim = claims.get(uid)
        if claim is None:
            plan.new_unique_ids.append(index.UniqueIdClaim(uid, "DocumentEntry", hash_, size))
        elif claim.kind != "DocumentEntry":
            raise XdsError(ErrorCode.XDSRegistryMetadataError,
                           f"DocumentEntry uniqueId {uid} is already used by a {claim.kind}")
        elif (claim.hash or "") != hash_:
            raise XdsError(ErrorCode.XDSNonIdenticalHash, uid)
        elif claim.size != size:
            raise XdsError(ErrorCode.XDSNonIdenticalSize, uid)


def _check_associations(sub: Submission, submitted: dict[str, str],
                        stored: dict[str, index.StoredObject], plan: _Plan) -> None:
    ss = sub.submission_set
    entries = {de.entry_uuid: de for de in sub.document_entries}
    folders = {fd.entry_uuid: fd for fd in sub.folders}
    members: set[str] = set()  # targets of SubmissionSet HasMembers

    def kind_of(ref: str, assoc: Association) -> str:
        if ref in submitted:
            return submitted[ref]
        if ref in stored:
            return stored[ref].kind
        raise XdsError(ErrorCode.UnresolvedReferenceException,
                       f"Association {assoc.entry_uuid}: {ref} is neither in the submission nor "
                       "in the registry")

    def patient_of(ref: str) -> str:
        obj = entries.get(ref) or folders.get(ref)
        return (obj.patient_id or "") if obj else stored[ref].patient_id

    def approved(ref: str, assoc: Association) -> None:
        if ref in stored and stored[ref].status != Status.Approved:
            raise XdsError(ErrorCode.XDSRegistryDeprecatedDocumentError,
                           f"Association {assoc.entry_uuid} references {ref}, which is "
                           f"{stored[ref].status.rsplit(':', 1)[-1]}")

    def metadata(text: str) -> XdsError:
        return XdsError(ErrorCode.XDSRegistryMetadataError, text)

    fd_de: dict[str, Association] = {}
    for assoc in sub.associations:
        owner = f"Association {assoc.entry_uuid}"
        source_kind = kind_of(assoc.source_object, assoc)
        target_kind = kind_of(assoc.target_object, assoc)
        if assoc.association_type == AssociationType.HasMember:
            if assoc.source_object == ss.entry_uuid:
                members.add(assoc.target_object)
                _check_submission_set_member(assoc, target_kind, submitted)
                if target_kind == "DocumentEntry":
                    approved(assoc.target_object, assoc)
            elif source_kind == "Folder":
                if target_kind != "DocumentEntry":
                    raise metadata(f"{owner}: a Folder HasMember must target a DocumentEntry")
                approved(assoc.source_object, assoc)
                approved(assoc.target_object, assoc)
                if patient_of(assoc.source_object) != patient_of(assoc.target_object):
                    raise XdsError(ErrorCode.XDSPatientIdDoesNotMatch,
                                   f"{owner}: DocumentEntry {assoc.target_object} and Folder "
                                   f"{assoc.source_object} have different patientIds")
                fd_de[assoc.entry_uuid] = assoc
                if assoc.source_object in stored:
                    plan.folders_touched.add(assoc.source_object)
            else:
                raise metadata(f"{owner}: HasMember source must be the SubmissionSet or a Folder")
            continue
        # A document relationship (ITI TF-2 §3.42.4.1.3.5).
        if assoc.source_object not in entries:
            raise XdsError(ErrorCode.UnresolvedReferenceException,
                           f"{owner}: sourceObject {assoc.source_object} must be a DocumentEntry "
                           "of this submission")
        if target_kind != "DocumentEntry":
            raise metadata(f"{owner}: targetObject {assoc.target_object} is a {target_kind}")
        if assoc.association_type in _REGISTRY_ONLY_TARGETS and assoc.target_object not in stored:
            raise XdsError(ErrorCode.UnresolvedReferenceException,
                           f"{owner}: targetObject {assoc.target_object} must already be in "
                           "the registry")
        approved(assoc.target_object, assoc)
        if patient_of(assoc.source_object) != patient_of(assoc.target_object):
            raise XdsError(ErrorCode.XDSPatientIdDoesNotMatch,
                           f"{owner}: DocumentEntries {assoc.source_object} and "
                           f"{assoc.target_object} have different patientIds")
        if assoc.association_type == AssociationType.IsSnapshotOf:
            target = stored[assoc.target_object]
            if target.object_type != DocumentEntryType.OnDemand:
                raise metadata(f"{owner}: IsSnapshotOf must target an On-Demand DocumentEntry")
        if assoc.association_type in REPLACING_TYPES:
            plan.replaced.append((assoc.source_object, assoc.target_object))

    for ref in [*entries, *folders, *fd_de]:
        if ref not in members:
            raise metadata(f"{submitted[ref]} {ref} has no HasMember from the SubmissionSet")


def _check_submission_set_member(assoc: Association, target_kind: str,
                                 submitted: dict[str, str]) -> None:
    owner = f"Association {assoc.entry_uuid}"
    in_submission = assoc.target_object in submitted
    if target_kind == "DocumentEntry":
        values = assoc.submission_set_status or []
        if len(values) != 1 or values[0] not in ("Original", "Reference"):
            raise XdsError(ErrorCode.XDSRegistryMetadataError,
                           f"{owner}: SubmissionSet HasMember of a DocumentEntry needs one "
                           "SubmissionSetStatus value, Original or Reference")
        if values[0] == "Original" and not in_submission:
            raise XdsError(ErrorCode.XDSRegistryMetadataError,
                           f"{owner}: SubmissionSetStatus Original but DocumentEntry "
                           f"{assoc.target_object} is not in the submission")
        if values[0] == "Reference" and in_submission:
            raise XdsError(ErrorCode.XDSRegistryMetadataError,
                           f"{owner}: SubmissionSetStatus Reference but DocumentEntry "
                           f"{assoc.target_object} is in the submission (use Original)")
    elif target_kind in ("Folder", "Association"):
        if not in_submission:
            raise XdsError(ErrorCode.XDSRegistryMetadataError,
                           f"{owner}: a SubmissionSet HasMember may target an existing "
                           "DocumentEntry only")
    else:
        raise XdsError(ErrorCode.XDSRegistryMetadataError,
                       f"{owner}: a SubmissionSet cannot contain a {target_kind}")


def _xml(el: Element) -> bytes:
    return etree.tostring(el, encoding="utf-8")


def _approve_and_build(sub: Submission) -> dict[str, bytes]:
    """Set the registry-owned attributes of every new object; its XML by entryUUID."""
    ss = sub.submission_set
    ss.availability_status = Status.Approved
    xml = {ss.entry_uuid: _xml(build_submission_set(ss))}
    for de in sub.document_entries:
        de.availability_status = Status.Approved
        de.lid, de.version = de.entry_uuid, "1"
        xml[de.entry_uuid] = _xml(build_document_entry(de))
    for fd in sub.folders:
        # lastUpdateTime lives in its column and is written into the XML on the way out.
        fd.availability_status = Status.Approved
        fd.lid, fd.version, fd.last_update_time = fd.entry_uuid, "1", None
        xml[fd.entry_uuid] = _xml(build_folder(fd))
    for assoc in sub.associations:
        assoc.availability_status = Status.Approved
        xml[assoc.entry_uuid] = _xml(build_association(assoc))
    return xml


def _store(conn: Connection, sub: Submission, plan: _Plan, xml: dict[str, bytes]) -> None:
    ss = sub.submission_set
    patient_id = ss.patient_id or ""
    # One global order for the row locks taken below (claims, then replaced entries): two
    # submissions holding the same uniqueIds in different orders would otherwise deadlock on
    # PostgreSQL, and a deadlock is an internal error, not the IHE answer.
    index.insert_claims(conn, sorted(plan.new_unique_ids, key=lambda claim: claim.unique_id))
    index.insert_submission_set(conn, ss, xml[ss.entry_uuid])
    for de in sub.document_entries:
        index.insert_document_entry(conn, de, ss.entry_uuid, xml[de.entry_uuid])
    for fd in sub.folders:
        index.insert_folder(conn, fd, plan.now, xml[fd.entry_uuid])
    index.insert_associations(
        conn, [(a, xml[a.entry_uuid]) for a in sub.associations], patient_id)
    entries = {de.entry_uuid: de for de in sub.document_entries}
    for new_id, old_id in sorted(plan.replaced, key=lambda pair: pair[1]):
        _replace(conn, ss.entry_uuid, entries[new_id], old_id, plan)
    index.touch_folders(conn, plan.folders_touched, plan.now)


def _replace(conn: Connection, ss_id: str, new: DocumentEntry, old_id: str, plan: _Plan) -> None:
    """RPLC / XFRM_RPLC side effects (ITI TF-2 §3.42.4.1.3.5, TF-3 §4.2.2.2)."""
    if not index.deprecate_document(conn, old_id):
        raise XdsError(ErrorCode.XDSRegistryDeprecatedDocumentError,
                       f"DocumentEntry {old_id} was already replaced")
    index.deprecate_documents(conn, index.transforms_and_addenda(conn, old_id))
    for folder_id, folder_patient in index.approved_folders_containing(conn, old_id):
        if surviving(conn, folder_patient) != new.patient_id:
            raise XdsError(ErrorCode.XDSPatientIdDoesNotMatch,
                           f"replacement {new.entry_uuid} and Folder {folder_id} have different "
                           "patientIds")
        member = Association(
            entry_uuid=new_uuid_urn(), association_type=AssociationType.HasMember,
            source_object=folder_id, target_object=new.entry_uuid,
            availability_status=Status.Approved)
        link = Association(
            entry_uuid=new_uuid_urn(), association_type=AssociationType.HasMember,
            source_object=ss_id, target_object=member.entry_uuid,
            availability_status=Status.Approved)
        index.insert_associations(
            conn, [(a, _xml(build_association(a))) for a in (member, link)], new.patient_id or "")
        plan.folders_touched.add(folder_id)
