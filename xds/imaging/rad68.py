"""RAD-68 Provide and Register Imaging Document Set: the XDS metadata of a KOS manifest.

The DocumentEntry follows RAD TF-3 §4.68 and the dcm4chee mapping (uniqueId = KOS SOP Instance
UID, mimeType application/dicom, formatCode 88.59, eventCodeList = acquisition modalities,
referenceIdList = Study Instance UID and accessions); patientId is the affinity-domain id, the
departmental one is sourcePatientId. The wire format is ITI-41 (``clients.source``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from xds.clients.source import (
    CONFIDENTIALITY_CODE, HEALTHCARE_FACILITY_TYPE_CODE, new_unique_id, parse_code,
)
from xds.dicom.uids import DCMUID_SCHEME, DICOM_MIME, KOS_SOP_CLASS
from xds.ebrim.vocabulary import AssociationType, DocumentEntryType
from xds.imaging.context import ImagingSource
from xds.model.metadata import Association, DocumentEntry, Submission, SubmissionSet
from xds.model.values import Code, LocalizedString, is_dtm, is_oid, new_uuid_urn, now_dtm
from xds.mpi.index import PatientIndex
from xds.mpi.model import MpiError, PatientIdentifier
from xds.store.instances import Instance

__all__ = [
    "PublishError", "FORMAT_CODE", "MODALITY_SCHEME", "STUDY_UID_TYPE",
    "ACCESSION_TYPE", "manifest_submission", "resolve_patient", "event_codes", "reference_ids",
]

#: formatCode of an XDS-I.b manifest (RAD68-022).
FORMAT_CODE = Code(KOS_SOP_CLASS, DCMUID_SCHEME, LocalizedString("Key Object Selection Document"))
#: codingScheme of the modality event codes (CID 29), as the XDS-I.b digest names it.
MODALITY_SCHEME = "DCM"
STUDY_UID_TYPE = "urn:ihe:iti:xds:2016:studyInstanceUID"
ACCESSION_TYPE = "urn:ihe:iti:xds:2013:accession"
_TITLE_MAX = 128
#: DICOM CID 29 "Acquisition Modality": code -> meaning. Objects of other modalities (KO, PR,
#: SR, SEG ...) are no acquisition and give no event code.
_MODALITIES = {
    "AR": "Autorefraction", "BMD": "Bone Mineral Densitometry", "BDUS": "Ultrasound Bone Densitometry",
    "CR": "Computed Radiography", "CT": "Computed Tomography", "DG": "Diaphanography",
    "DX": "Digital Radiography", "ECG": "Electrocardiography", "EPS": "Cardiac Electrophysiology",
    "ES": "Endoscopy", "GM": "General Microscopy", "HD": "Hemodynamic Waveform",
    "IO": "Intra-oral Radiography", "IVOCT": "Intravascular Optical Coherence Tomography",
    "IVUS": "Intravascular Ultrasound", "KER": "Keratometry", "LEN": "Lensometry",
    "MG": "Mammography", "MR": "Magnetic Resonance", "NM": "Nuclear Medicine",
    "OAM": "Ophthalmic Axial Measurements", "OCT": "Optical Coherence Tomography",
    "OP": "Ophthalmic Photography", "OPM": "Ophthalmic Mapping", "OPT": "Ophthalmic Tomography",
    "OPV": "Ophthalmic Visual Field", "OSS": "Optical Surface Scanner",
    "PT": "Positron emission tomography", "PX": "Panoramic X-Ray", "RF": "Radiofluoroscopy",
    "RG": "Radiographic imaging", "SM": "Slide Microscopy", "SRF": "Subjective Refraction",
    "TG": "Thermography", "US": "Ultrasound", "VA": "Visual Acuity", "XA": "X-Ray Angiography",
    "XC": "External-camera Photography",
}


class PublishError(Exception):
    """A manifest could not be published (no instances, no affinity-domain patient id, or the
    repository refused it); the message says why."""


def resolve_patient(source: ImagingSource, instance: Instance) -> str:
    """The affinity-domain patient id (CX) of ``instance``'s patient.

    The departmental id itself when its issuer is the affinity domain, else the id the PIX
    Manager's index (on the same database) links to it. Raises PublishError otherwise.
    """
    affinity = source.settings.affinity_domain
    if not instance.patient_id:
        raise PublishError(f"instance {instance.sop_instance_uid} has no Patient ID")
    local = PatientIdentifier(instance.patient_issuer, instance.patient_id)
    if local.domain == affinity:
        return local.cx
    try:
        linked = PatientIndex(source.engine, source.settings).query(local, [affinity])
    except MpiError as exc:
        raise PublishError(f"no affinity-domain patient id for {local.cx}: {exc}") from None
    if not linked:
        raise PublishError(f"no affinity-domain patient id for {local.cx}")
    return linked[0].cx


def event_codes(instances: Sequence[Instance]) -> list[Code]:
    """One DCM code per distinct acquisition modality (CID 29), in order of appearance."""
    codes: dict[str, Code] = {}
    for i in instances:
        modality = (i.modality or "").strip().upper()
        if modality in _MODALITIES and modality not in codes:
            codes[modality] = Code(modality, MODALITY_SCHEME, LocalizedString(_MODALITIES[modality]))
    return list(codes.values())


def reference_ids(study_uid: str, instances: Sequence[Instance]) -> list[str]:
    """referenceIdList: the Study Instance UID, then each accession (with its issuer OID)."""
    values = [f"{study_uid}^^^^{STUDY_UID_TYPE}"]
    for i in instances:
        if not i.accession_number:
            continue
        if i.accession_issuer and is_oid(i.accession_issuer):
            value = f"{i.accession_number}^^^&{i.accession_issuer}&ISO^{ACCESSION_TYPE}"
        else:
            value = f"{i.accession_number}^^^^{ACCESSION_TYPE}"
        if value not in values:
            values.append(value)
    return values


def _service_start(instance: Instance) -> str | None:
    date = (instance.study_date or "").strip()
    if not date:
        return None
    time = (instance.study_time or "").split(".")[0].strip().replace(":", "")
    time = time[: len(time) - len(time) % 2][:6]
    for value in (date + time, date):
        if is_dtm(value):
            return value
    return None


def _source_patient_info(instance: Instance, source_cx: str) -> list[str]:
    info = [f"PID-3|{source_cx}"]
    if instance.patient_name:
        info.append(f"PID-5|{instance.patient_name}")
    if instance.patient_birth_date:
        info.append(f"PID-7|{instance.patient_birth_date}")
    if instance.patient_sex:
        info.append(f"PID-8|{instance.patient_sex}")
    return info


def manifest_submission(source: ImagingSource, manifest: Dataset, instances: Sequence[Instance],
                        patient_cx: str, *, replaces_entry_uuid: str | None = None) -> Submission:
    """The RAD-68 Submission of the KOS ``manifest`` referencing ``instances``.

    The DocumentEntry has a fresh ``urn:uuid:`` entryUUID (kept for a later replacement); with
    ``replaces_entry_uuid`` an RPLC association makes the new manifest replace that entry.
    """
    settings = source.settings
    first = instances[0]
    type_code = parse_code(settings.imaging_type_code)
    study_uid = str(manifest.StudyInstanceUID)
    source_cx = PatientIdentifier(first.patient_issuer, first.patient_id).cx
    title = "Manifest"
    if first.study_description:
        title = f"Manifest: {first.study_description}"
    now = now_dtm()
    ss = SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id=new_unique_id(),
        patient_id=patient_cx,
        source_id=settings.imaging_source_unique_id,
        submission_time=now,
        content_type_code=type_code,
        title=LocalizedString(title[:_TITLE_MAX]),
    )
    de = DocumentEntry(
        entry_uuid=new_uuid_urn(),
        object_type=DocumentEntryType.Stable,
        mime_type=DICOM_MIME,
        title=LocalizedString(title[:_TITLE_MAX]),
        unique_id=str(manifest.SOPInstanceUID),
        patient_id=patient_cx,
        source_patient_id=source_cx,
        source_patient_info=_source_patient_info(first, source_cx),
        creation_time=now,
        service_start_time=_service_start(first),
        language_code="en-US",
        reference_id_list=reference_ids(study_uid, instances),
        class_code=parse_code(settings.imaging_class_code),
        confidentiality_codes=[CONFIDENTIALITY_CODE],
        event_codes=event_codes(instances),
        format_code=FORMAT_CODE,
        healthcare_facility_type_code=HEALTHCARE_FACILITY_TYPE_CODE,
        practice_setting_code=parse_code(settings.imaging_practice_code),
        type_code=type_code,
    )
    associations = [Association(
        entry_uuid="Association01",
        association_type=AssociationType.HasMember,
        source_object=ss.entry_uuid,
        target_object=de.entry_uuid,
        submission_set_status=["Original"],
    )]
    if replaces_entry_uuid:
        associations.append(Association(
            entry_uuid="Association02",
            association_type=AssociationType.RPLC,
            source_object=de.entry_uuid,
            target_object=replaces_entry_uuid,
        ))
    return Submission(submission_sets=[ss], document_entries=[de], associations=associations)
