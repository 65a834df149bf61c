"""Association <-> rim:Association (ITI TF-3 §4.2.2): HasMember and document relationships."""

from __future__ import annotations

from xds.ebrim.rim import (
    Element, element, metadata_error, read_codes, read_slots, write_code, write_slot,
    write_version_info,
)
from xds.ebrim.vocabulary import ASSOCIATION_DOCUMENTATION, SUBMISSION_SET_STATUS, ObjectType
from xds.model.metadata import Association

__all__ = ["parse_association", "build_association"]


def parse_association(el: Element) -> Association:
    """The Association in ``el``; missing required attributes are a metadata error."""
    entry_uuid = el.get("id") or ""
    owner = f"Association {entry_uuid}"
    for attr in ("id", "associationType", "sourceObject", "targetObject"):
        if not el.get(attr):
            raise metadata_error(f"{owner}: required attribute {attr} is missing")
    slots = read_slots(el, owner)
    status_slot = slots.by_name.get(SUBMISSION_SET_STATUS)
    submission_set_status = slots.pop_list(SUBMISSION_SET_STATUS) if status_slot else None
    codes = read_codes(el, entry_uuid, owner, "")
    return Association(
        entry_uuid=entry_uuid,
        association_type=el.get("associationType") or "",
        source_object=el.get("sourceObject") or "",
        target_object=el.get("targetObject") or "",
        availability_status=el.get("status"),
        home_community_id=el.get("home"),
        submission_set_status=submission_set_status,
        documentation=codes.get(ASSOCIATION_DOCUMENTATION, []),
        extra_slots=slots.rest(),
    )


def build_association(assoc: Association) -> Element:
    """``rim:Association`` for ``assoc``."""
    # lid and VersionInfo as on every returned object: the NIST validators expect them
    # (iheos-toolkit2 #598); associations are never versioned, so lid = id, version 1.
    el = element(
        "Association", id=assoc.entry_uuid, home=assoc.home_community_id, lid=assoc.entry_uuid,
        objectType=ObjectType.Association, status=assoc.availability_status,
        associationType=assoc.association_type, sourceObject=assoc.source_object,
        targetObject=assoc.target_object,
    )
    if assoc.submission_set_status is not None:
        write_slot(el, SUBMISSION_SET_STATUS, assoc.submission_set_status)
    for slot in assoc.extra_slots:
        write_slot(el, slot.name, slot.values, slot.slot_type)
    write_version_info(el, "1")
    for code in assoc.documentation:
        write_code(el, ASSOCIATION_DOCUMENTATION, code)
    return el
