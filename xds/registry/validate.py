"""ITI-42 metadata rules that need no database (ITI TF-3 §4.1-4.3, ITI TF-2 §3.42.4.1.3).

Optionality of the "XDS DR" column of TF-3 Table 4.3.1-3 is written once, as data; each check
adds a RegistryError to a list so one response reports every problem of a submission.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from xds.ebrim.vocabulary import SUBMISSION_SET_STATUS, AssociationType, DocumentEntryType
from xds.model.errors import ErrorCode, RegistryError, Severity
from xds.model.metadata import (
    Association, Author, DocumentEntry, Folder, Slot, Submission, SubmissionSet,
)
from xds.model.values import (
    CX, is_cxi, is_dtm, is_oid, is_oid_urn, is_uuid_urn, is_xcn, is_xon, is_xtn, normalize_dtm,
)

__all__ = ["validate_submission", "extra_slots_not_saved"]

_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_URN = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+$", re.IGNORECASE)
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")


def _size(value: str) -> bool:
    return value.isdigit()


def _repository_id(value: str) -> bool:
    return is_oid(value) and len(value) <= 64


def _source_patient_info(value: str) -> bool:
    return bool(re.match(r"^PID-\d+\|", value))


def _cx(value: str) -> bool:
    return CX.parse(value) is not None


#: (attribute, required, syntax check or None) per object type; "required" is TF-3 Table 4.3.1-3,
#: column XDS DR (the Document Repository sending ITI-42).
Rule = tuple[str, bool, Callable[[str], bool] | None]
DOCUMENT_ENTRY_RULES: list[Rule] = [
    ("patient_id", True, _cx),
    ("unique_id", True, None),
    ("mime_type", True, _MIME.match),  # type: ignore[list-item]
    ("creation_time", True, is_dtm),
    ("hash", True, _SHA1.match),  # type: ignore[list-item]
    ("size", True, _size),
    ("language_code", True, _LANG.match),  # type: ignore[list-item]
    ("repository_unique_id", True, _repository_id),
    ("source_patient_id", True, _cx),
    ("service_start_time", False, is_dtm),
    ("service_stop_time", False, is_dtm),
    ("legal_authenticator", False, is_xcn),
    ("home_community_id", False, is_oid_urn),
    ("class_code", True, None),
    ("format_code", True, None),
    ("healthcare_facility_type_code", True, None),
    ("practice_setting_code", True, None),
    ("type_code", True, None),
]
SUBMISSION_SET_RULES: list[Rule] = [
    ("patient_id", True, _cx),
    ("unique_id", True, is_oid),
    ("source_id", True, is_oid),
    ("submission_time", True, is_dtm),
    ("content_type_code", True, None),
    ("home_community_id", False, is_oid_urn),
]
FOLDER_RULES: list[Rule] = [
    ("patient_id", True, _cx),
    ("unique_id", True, is_oid),
    ("title", True, None),
    ("home_community_id", False, is_oid_urn),
]


def _tf_name(attribute: str) -> str:
    """The TF spelling of a model field name: ``class_code`` -> ``classCode``."""
    head, *rest = attribute.split("_")
    return head + "".join(part.capitalize() for part in rest)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[RegistryError] = []

    def fail(self, context: str, code: ErrorCode = ErrorCode.XDSRegistryMetadataError) -> None:
        self.errors.append(RegistryError(code=code, context=context))

    def rules(self, obj: object, owner: str, rules: list[Rule]) -> None:
        for attribute, required, syntax in rules:
            value = getattr(obj, attribute)
            if value is None or value == "":
                if required:
                    self.fail(f"{owner}: required attribute {_tf_name(attribute)} is missing")
                continue
            if syntax is not None and isinstance(value, str) and not syntax(value):
                self.fail(f"{owner}: {_tf_name(attribute)} {value!r} is not well-formed")

    def authors(self, authors: list[Author], owner: str) -> None:
        for author in authors:
            if not (author.person or author.institutions or author.telecommunications):
                self.fail(f"{owner}: author needs authorPerson, authorInstitution or "
                          "authorTelecommunication")
            if author.person and not is_xcn(author.person):
                self.fail(f"{owner}: authorPerson {author.person!r} is not a valid XCN")
            for value in author.institutions:
                if not is_xon(value):
                    self.fail(f"{owner}: authorInstitution {value!r} is not a valid XON")
            for value in author.telecommunications:
                if not is_xtn(value):
                    self.fail(f"{owner}: authorTelecommunication {value!r} is not a valid XTN")

    def entry_id(self, entry_uuid: str, owner: str) -> None:
        if entry_uuid.lower().startswith("urn:uuid:") and not is_uuid_urn(entry_uuid):
            self.fail(f"{owner}: id {entry_uuid!r} is not a lowercase RFC 4122 UUID URN")


def validate_submission(sub: Submission) -> list[RegistryError]:
    """Every database-free ITI-42 error of ``sub`` (empty list when it passes)."""
    check = _Checker()
    if len(sub.submission_sets) != 1:
        check.fail(f"a submission needs exactly one SubmissionSet, found {len(sub.submission_sets)}")
        return check.errors
    ss = sub.submission_set
    if not (sub.document_entries or sub.folders or sub.associations):
        check.fail("a submission needs a DocumentEntry, a Folder or an Association")
    _submission_set(check, ss)
    for de in sub.document_entries:
        _document_entry(check, de)
    for fd in sub.folders:
        _folder(check, fd)
    for assoc in sub.associations:
        check.entry_id(assoc.entry_uuid, f"Association {assoc.entry_uuid}")
        _association_shape(check, assoc, ss)
    _ids_unique(check, sub)
    if not check.errors:
        _patients_match(check, sub)
        _unique_ids_in_message(check, sub)
    return check.errors


def _submission_set(check: _Checker, ss: SubmissionSet) -> None:
    owner = f"SubmissionSet {ss.entry_uuid}"
    check.entry_id(ss.entry_uuid, owner)
    check.rules(ss, owner, SUBMISSION_SET_RULES)
    check.authors(ss.authors, owner)
    if ss.limited_metadata:
        check.fail(f"{owner}: limitedMetadata is not allowed in XDS (ITI TF-3 Table 4.3.1-3)")


def _document_entry(check: _Checker, de: DocumentEntry) -> None:
    owner = f"DocumentEntry {de.entry_uuid}"
    check.entry_id(de.entry_uuid, owner)
    if de.object_type != DocumentEntryType.Stable:
        check.fail(f"{owner}: objectType {de.object_type!r} is not the Stable DocumentEntry type "
                   "(On-Demand entries are registered with ITI-61)")
    check.rules(de, owner, DOCUMENT_ENTRY_RULES)
    check.authors(de.authors, owner)
    if not de.confidentiality_codes:
        check.fail(f"{owner}: required attribute confidentialityCode is missing")
    if de.limited_metadata:
        check.fail(f"{owner}: limitedMetadata is not allowed in XDS (ITI TF-3 Table 4.3.1-3)")
    for value in de.source_patient_info:
        if not _source_patient_info(value):
            check.fail(f"{owner}: sourcePatientInfo value {value!r} is not of the form PID-n|value")
    for value in de.reference_id_list:
        if not is_cxi(value):
            check.fail(f"{owner}: referenceIdList value {value!r} is not a valid CXi")
    start, stop = de.service_start_time, de.service_stop_time
    if start and stop and is_dtm(start) and is_dtm(stop):
        if (normalize_dtm(start) or "") > (normalize_dtm(stop) or ""):
            check.fail(f"{owner}: serviceStartTime {start} is after serviceStopTime {stop}")


def _folder(check: _Checker, fd: Folder) -> None:
    owner = f"Folder {fd.entry_uuid}"
    check.entry_id(fd.entry_uuid, owner)
    check.rules(fd, owner, FOLDER_RULES)
    if not fd.codes:
        check.fail(f"{owner}: required attribute codeList is missing")
    if fd.limited_metadata:
        check.fail(f"{owner}: limitedMetadata is not allowed in XDS (ITI TF-3 Table 4.3.1-3)")


def _association_shape(check: _Checker, assoc: Association, ss: SubmissionSet) -> None:
    owner = f"Association {assoc.entry_uuid}"
    known = {t.value for t in AssociationType} - {
        AssociationType.UpdateAvailabilityStatus, AssociationType.SubmitAssociation}
    if assoc.association_type not in known:
        check.fail(f"{owner}: associationType {assoc.association_type!r} is not accepted by ITI-42")
        return
    is_ss_member = (assoc.association_type == AssociationType.HasMember
                    and assoc.source_object == ss.entry_uuid)
    if assoc.submission_set_status is not None and not is_ss_member:
        check.fail(f"{owner}: Slot {SUBMISSION_SET_STATUS} belongs only on a SubmissionSet "
                   "HasMember")


def _ids_unique(check: _Checker, sub: Submission) -> None:
    seen: set[str] = set()
    objects: list[DocumentEntry | SubmissionSet | Folder | Association] = [
        *sub.submission_sets, *sub.document_entries, *sub.folders, *sub.associations]
    for obj in objects:
        if obj.entry_uuid in seen:
            check.fail(f"id {obj.entry_uuid} is used by two objects of the submission")
        seen.add(obj.entry_uuid)


def _patients_match(check: _Checker, sub: Submission) -> None:
    expected = sub.submission_set.patient_id
    objects: list[DocumentEntry | Folder] = [*sub.document_entries, *sub.folders]
    for obj in objects:
        if obj.patient_id != expected:
            kind = "DocumentEntry" if isinstance(obj, DocumentEntry) else "Folder"
            check.fail(
                f"patientId {obj.patient_id} of {kind} {obj.entry_uuid} does not match "
                f"the SubmissionSet patientId {expected}", ErrorCode.XDSPatientIdDoesNotMatch)


def _unique_ids_in_message(check: _Checker, sub: Submission) -> None:
    seen: set[str] = set()
    objects: list[SubmissionSet | DocumentEntry | Folder] = [
        sub.submission_set, *sub.document_entries, *sub.folders]
    for obj in objects:
        uid = obj.unique_id or ""
        if uid in seen:
            check.fail(uid, ErrorCode.XDSRegistryDuplicateUniqueIdInMessage)
        seen.add(uid)


def extra_slots_not_saved(sub: Submission) -> list[RegistryError]:
    """Drop extra slots whose names are not URNs outside ``urn:ihe:`` (ITI TF-2 §3.42.4.1.3.2)
    and warn XDSExtraMetadataNotSaved for each; valid extra metadata is stored and returned."""
    warnings: list[RegistryError] = []
    objects: list[DocumentEntry | SubmissionSet | Folder | Association] = [
        *sub.submission_sets, *sub.document_entries, *sub.folders, *sub.associations]
    for obj in objects:
        kept: list[Slot] = []
        for slot in obj.extra_slots:
            if _URN.match(slot.name) and not slot.name.lower().startswith("urn:ihe:"):
                kept.append(slot)
            else:
                warnings.append(RegistryError(
                    code=ErrorCode.XDSExtraMetadataNotSaved, severity=Severity.Warning,
                    context=f"Extra Metadata - {slot.name} - not saved", location=obj.entry_uuid))
        obj.extra_slots = kept
    return warnings
