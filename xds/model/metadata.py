"""XDS metadata objects (ITI TF-3 §4.1-4.2): DocumentEntry, SubmissionSet, Folder, Association.

Plain data: the ebRIM binding lives in ``xds.ebrim``, the rules in ``xds.registry.validate``.
Attribute names are the TF attribute names in snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xds.model.values import Code, LocalizedString

__all__ = ["Slot", "Author", "DocumentEntry", "SubmissionSet", "Folder", "Association", "Submission"]


@dataclass(slots=True, kw_only=True)
class Slot:
    """A ``rim:Slot``: extra metadata kept verbatim, or an IHE slot not modelled as a field."""

    name: str
    values: list[str] = field(default_factory=list)
    slot_type: str | None = None


@dataclass(slots=True, kw_only=True)
class Author:
    """One author classification (ITI TF-3 §4.2.3.1.4)."""

    person: str | None = None
    institutions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecommunications: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class DocumentEntry:
    """A DocumentEntry (rim:ExtrinsicObject), ITI TF-3 §4.2.3.2."""

    entry_uuid: str
    object_type: str
    mime_type: str | None = None
    availability_status: str | None = None
    home_community_id: str | None = None
    lid: str | None = None
    version: str | None = None
    title: LocalizedString | None = None
    comments: LocalizedString | None = None
    unique_id: str | None = None
    patient_id: str | None = None
    source_patient_id: str | None = None
    source_patient_info: list[str] = field(default_factory=list)
    creation_time: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    hash: str | None = None
    size: str | None = None
    language_code: str | None = None
    legal_authenticator: str | None = None
    repository_unique_id: str | None = None
    uri: str | None = None
    reference_id_list: list[str] = field(default_factory=list)
    document_availability: str | None = None
    authors: list[Author] = field(default_factory=list)
    class_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    type_code: Code | None = None
    limited_metadata: bool = False
    extra_slots: list[Slot] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class SubmissionSet:
    """A SubmissionSet (rim:RegistryPackage classified a54d6aa5...), ITI TF-3 §4.2.3.3."""

    entry_uuid: str
    availability_status: str | None = None
    home_community_id: str | None = None
    title: LocalizedString | None = None
    comments: LocalizedString | None = None
    unique_id: str | None = None
    patient_id: str | None = None
    source_id: str | None = None
    submission_time: str | None = None
    intended_recipients: list[str] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    content_type_code: Code | None = None
    limited_metadata: bool = False
    extra_slots: list[Slot] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Folder:
    """A Folder (rim:RegistryPackage classified d9d542f3...), ITI TF-3 §4.2.3.4."""

    entry_uuid: str
    availability_status: str | None = None
    home_community_id: str | None = None
    lid: str | None = None
    version: str | None = None
    title: LocalizedString | None = None
    comments: LocalizedString | None = None
    unique_id: str | None = None
    patient_id: str | None = None
    last_update_time: str | None = None
    codes: list[Code] = field(default_factory=list)
    limited_metadata: bool = False
    extra_slots: list[Slot] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Association:
    """A rim:Association: HasMember or a document relationship (ITI TF-3 §4.2.2)."""

    entry_uuid: str
    association_type: str
    source_object: str
    target_object: str
    availability_status: str | None = None
    home_community_id: str | None = None
    #: ``SubmissionSetStatus`` slot values of an SS -> DE HasMember (Original / Reference).
    submission_set_status: list[str] | None = None
    #: Association Documentation classification (abd807a3...) of a relationship, if any.
    documentation: list[Code] = field(default_factory=list)
    extra_slots: list[Slot] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Submission:
    """The objects of one SubmitObjectsRequest, in document order per type."""

    submission_sets: list[SubmissionSet] = field(default_factory=list)
    document_entries: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)

    @property
    def submission_set(self) -> SubmissionSet:
        """The one SubmissionSet (validated to exist before this is used)."""
        return self.submission_sets[0]
