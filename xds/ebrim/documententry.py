"""DocumentEntry <-> rim:ExtrinsicObject (ITI TF-3 §4.2.3.2); parse and build in one order."""

from __future__ import annotations

from xds.ebrim.rim import (
    RIM, Element, element, external_identifiers, metadata_error, read_authors, read_codes,
    read_localized,
    read_slots, single_code, single_identifier, write_author, write_code, write_external_identifier,
    write_localized, write_node_classification, write_slot, write_version_info,
)
from xds.ebrim.vocabulary import DE
from xds.model.metadata import DocumentEntry

__all__ = ["parse_document_entry", "build_document_entry"]


def parse_document_entry(eo: Element) -> DocumentEntry:
    """The DocumentEntry in ``eo``; raises XDSRegistryMetadataError on malformed structure."""
    entry_uuid = eo.get("id") or ""
    owner = f"DocumentEntry {entry_uuid}"
    if not entry_uuid:
        raise metadata_error("ExtrinsicObject without id")
    slots = read_slots(eo, owner)
    codes = read_codes(eo, entry_uuid, owner, DE.author)
    ids = external_identifiers(eo, entry_uuid, owner)
    nodes = {cl.get("classificationNode") for cl in eo.iterchildren(RIM + "Classification")}
    version = eo.find(RIM + "VersionInfo")
    return DocumentEntry(
        entry_uuid=entry_uuid,
        object_type=eo.get("objectType") or "",
        mime_type=eo.get("mimeType"),
        availability_status=eo.get("status"),
        home_community_id=eo.get("home"),
        lid=eo.get("lid"),
        version=version.get("versionName") if version is not None else None,
        title=read_localized(eo, "Name"),
        comments=read_localized(eo, "Description"),
        creation_time=slots.pop_single("creationTime"),
        language_code=slots.pop_single("languageCode"),
        service_start_time=slots.pop_single("serviceStartTime"),
        service_stop_time=slots.pop_single("serviceStopTime"),
        source_patient_id=slots.pop_single("sourcePatientId"),
        source_patient_info=slots.pop_list("sourcePatientInfo"),
        legal_authenticator=slots.pop_single("legalAuthenticator"),
        hash=slots.pop_single("hash"),
        size=slots.pop_single("size"),
        repository_unique_id=slots.pop_single("repositoryUniqueId"),
        uri=slots.pop_single("URI"),
        reference_id_list=slots.pop_list(DE.referenceIdList),
        document_availability=slots.pop_single("documentAvailability"),
        extra_slots=slots.rest(),
        authors=read_authors(eo, DE.author, entry_uuid, owner),
        class_code=single_code(codes, DE.classCode, owner, "classCode"),
        confidentiality_codes=codes.get(DE.confidentialityCode, []),
        event_codes=codes.get(DE.eventCodeList, []),
        format_code=single_code(codes, DE.formatCode, owner, "formatCode"),
        healthcare_facility_type_code=single_code(
            codes, DE.healthcareFacilityTypeCode, owner, "healthcareFacilityTypeCode"),
        practice_setting_code=single_code(codes, DE.practiceSettingCode, owner, "practiceSettingCode"),
        type_code=single_code(codes, DE.typeCode, owner, "typeCode"),
        limited_metadata=DE.limitedMetadata in nodes,
        patient_id=single_identifier(ids, DE.patientId, owner, "patientId"),
        unique_id=single_identifier(ids, DE.uniqueId, owner, "uniqueId"),
    )


def build_document_entry(de: DocumentEntry) -> Element:
    """``rim:ExtrinsicObject`` for ``de``, in XSD element order, ids as they are in ``de``."""
    eo = element(
        "ExtrinsicObject", id=de.entry_uuid, home=de.home_community_id, lid=de.lid,
        objectType=de.object_type, status=de.availability_status,
        mimeType=de.mime_type or "application/octet-stream",
    )
    for name, value in (
        ("creationTime", de.creation_time), ("languageCode", de.language_code),
        ("serviceStartTime", de.service_start_time), ("serviceStopTime", de.service_stop_time),
        ("sourcePatientId", de.source_patient_id),
    ):
        write_slot(eo, name, [value] if value is not None else [])
    write_slot(eo, "sourcePatientInfo", de.source_patient_info)
    for name, value in (
        ("legalAuthenticator", de.legal_authenticator), ("hash", de.hash), ("size", de.size),
        ("repositoryUniqueId", de.repository_unique_id), ("URI", de.uri),
    ):
        write_slot(eo, name, [value] if value is not None else [])
    write_slot(eo, DE.referenceIdList, de.reference_id_list)
    if de.document_availability is not None:
        write_slot(eo, "documentAvailability", [de.document_availability])
    for slot in de.extra_slots:
        write_slot(eo, slot.name, slot.values, slot.slot_type)
    write_localized(eo, "Name", de.title)
    write_localized(eo, "Description", de.comments)
    write_version_info(eo, de.version)
    for author in de.authors:
        write_author(eo, DE.author, author)
    for scheme, codes in (
        (DE.classCode, [de.class_code]), (DE.confidentialityCode, de.confidentiality_codes),
        (DE.eventCodeList, de.event_codes), (DE.formatCode, [de.format_code]),
        (DE.healthcareFacilityTypeCode, [de.healthcare_facility_type_code]),
        (DE.practiceSettingCode, [de.practice_setting_code]), (DE.typeCode, [de.type_code]),
    ):
        for code in codes:
            if code is not None:
                write_code(eo, scheme, code)
    if de.limited_metadata:
        write_node_classification(eo, DE.limitedMetadata)
    write_external_identifier(eo, DE.patientId, DE.patientId_name, de.patient_id)
    write_external_identifier(eo, DE.uniqueId, DE.uniqueId_name, de.unique_id)
    return eo
