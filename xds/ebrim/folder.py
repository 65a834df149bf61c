"""Folder <-> rim:RegistryPackage classified d9d542f3... (ITI TF-3 §4.2.3.4)."""

from __future__ import annotations

from xds.ebrim.rim import (
    single_identifier,
    RIM, Element, element, external_identifiers, read_codes, read_localized, read_slots,
    write_code, write_external_identifier, write_localized, write_node_classification,
    write_slot, write_version_info,
)
from xds.ebrim.vocabulary import FD, ObjectType
from xds.model.metadata import Folder

__all__ = ["parse_folder", "build_folder"]


def parse_folder(rp: Element, nodes: set[str]) -> Folder:
    """The Folder in ``rp``; ``nodes`` are its classificationNodes (inside or sibling)."""
    entry_uuid = rp.get("id") or ""
    owner = f"Folder {entry_uuid}"
    slots = read_slots(rp, owner)
    codes = read_codes(rp, entry_uuid, owner, "")
    ids = external_identifiers(rp, entry_uuid, owner)
    version = rp.find(RIM + "VersionInfo")
    return Folder(
        entry_uuid=entry_uuid,
        availability_status=rp.get("status"),
        home_community_id=rp.get("home"),
        lid=rp.get("lid"),
        version=version.get("versionName") if version is not None else None,
        title=read_localized(rp, "Name"),
        comments=read_localized(rp, "Description"),
        last_update_time=slots.pop_single("lastUpdateTime"),
        extra_slots=slots.rest(),
        codes=codes.get(FD.codeList, []),
        limited_metadata=FD.limitedMetadata in nodes,
        patient_id=single_identifier(ids, FD.patientId, owner, "patientId"),
        unique_id=single_identifier(ids, FD.uniqueId, owner, "uniqueId"),
    )


def build_folder(fd: Folder) -> Element:
    """``rim:RegistryPackage`` for ``fd`` with its type classification inside."""
    rp = element(
        "RegistryPackage", id=fd.entry_uuid, home=fd.home_community_id, lid=fd.lid,
        objectType=ObjectType.RegistryPackage, status=fd.availability_status,
    )
    write_slot(rp, "lastUpdateTime", [fd.last_update_time] if fd.last_update_time else [])
    for slot in fd.extra_slots:
        write_slot(rp, slot.name, slot.values, slot.slot_type)
    write_localized(rp, "Name", fd.title)
    write_localized(rp, "Description", fd.comments)
    write_version_info(rp, fd.version)
    for code in fd.codes:
        write_code(rp, FD.codeList, code)
    write_node_classification(rp, FD.classificationNode)
    if fd.limited_metadata:
        write_node_classification(rp, FD.limitedMetadata)
    write_external_identifier(rp, FD.patientId, FD.patientId_name, fd.patient_id)
    write_external_identifier(rp, FD.uniqueId, FD.uniqueId_name, fd.unique_id)
    return rp
