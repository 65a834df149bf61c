"""SubmissionSet <-> rim:RegistryPackage classified a54d6aa5... (ITI TF-3 §4.2.3.3)."""

from __future__ import annotations

from xds.ebrim.rim import (
    single_code, single_identifier,
    Element, element, external_identifiers, read_authors, read_codes, read_localized, read_slots,
    write_author, write_code, write_external_identifier, write_localized,
    write_node_classification, write_slot, write_version_info,
)
from xds.ebrim.vocabulary import SS, ObjectType
from xds.model.metadata import SubmissionSet

__all__ = ["parse_submission_set", "build_submission_set"]


def parse_submission_set(rp: Element, nodes: set[str]) -> SubmissionSet:
    """The SubmissionSet in ``rp``; ``nodes`` are its classificationNodes (inside or sibling)."""
    entry_uuid = rp.get("id") or ""
    owner = f"SubmissionSet {entry_uuid}"
    slots = read_slots(rp, owner)
    codes = read_codes(rp, entry_uuid, owner, SS.author)
    ids = external_identifiers(rp, entry_uuid, owner)
    return SubmissionSet(
        entry_uuid=entry_uuid,
        availability_status=rp.get("status"),
        home_community_id=rp.get("home"),
        title=read_localized(rp, "Name"),
        comments=read_localized(rp, "Description"),
        submission_time=slots.pop_single("submissionTime"),
        intended_recipients=slots.pop_list("intendedRecipient"),
        extra_slots=slots.rest(),
        authors=read_authors(rp, SS.author, entry_uuid, owner),
        content_type_code=single_code(codes, SS.contentTypeCode, owner, "contentTypeCode"),
        limited_metadata=SS.limitedMetadata in nodes,
        patient_id=single_identifier(ids, SS.patientId, owner, "patientId"),
        source_id=single_identifier(ids, SS.sourceId, owner, "sourceId"),
        unique_id=single_identifier(ids, SS.uniqueId, owner, "uniqueId"),
    )


def build_submission_set(ss: SubmissionSet) -> Element:
    """``rim:RegistryPackage`` for ``ss`` with its type classification inside."""
    rp = element(
        "RegistryPackage", id=ss.entry_uuid, home=ss.home_community_id, lid=ss.entry_uuid,
        objectType=ObjectType.RegistryPackage,
        status=ss.availability_status,
    )
    write_slot(rp, "submissionTime", [ss.submission_time] if ss.submission_time else [])
    write_slot(rp, "intendedRecipient", ss.intended_recipients)
    for slot in ss.extra_slots:
        write_slot(rp, slot.name, slot.values, slot.slot_type)
    write_localized(rp, "Name", ss.title)
    write_localized(rp, "Description", ss.comments)
    write_version_info(rp, "1")
    for author in ss.authors:
        write_author(rp, SS.author, author)
    if ss.content_type_code is not None:
        write_code(rp, SS.contentTypeCode, ss.content_type_code)
    write_node_classification(rp, SS.classificationNode)
    if ss.limited_metadata:
        write_node_classification(rp, SS.limitedMetadata)
    write_external_identifier(rp, SS.patientId, SS.patientId_name, ss.patient_id)
    write_external_identifier(rp, SS.sourceId, SS.sourceId_name, ss.source_id)
    write_external_identifier(rp, SS.uniqueId, SS.uniqueId_name, ss.unique_id)
    return rp
