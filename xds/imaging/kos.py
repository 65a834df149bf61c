"""The XDS-I.b manifest: a Key Object Selection document (TID 2010) listing a study's instances.

``build_manifest`` makes one KOS per study: patient and study attributes copied from the
instances, the evidence nested per series with Retrieve AE Title, Retrieve Location UID (this
Imaging Document Source) and the WADO-RS series URL, one content item per instance.
``parse_manifest`` reads one back as a consumer does (instance-level locations first, then
series level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, generate_uid

from xds.dicom.uids import EXPLICIT_LE, KOS_SOP_CLASS
from xds.imaging.context import ImagingSource
from xds.store.instances import Instance

__all__ = [
    "MANIFEST_TITLE", "KOS_SERIES_NUMBER", "Reference", "Manifest", "build_manifest",
    "parse_manifest", "value_type",
]

#: Document title of an XDS-I.b manifest: (113030, DCM, "Manifest").
MANIFEST_TITLE = ("113030", "DCM", "Manifest")
#: Series Number of the KOS series (as in the NIST gold sample).
KOS_SERIES_NUMBER = 999


@dataclass(frozen=True, slots=True)
class Reference:
    """One instance a manifest references, and where to retrieve it."""

    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    retrieve_location_uid: str | None = None
    retrieve_ae_title: str | None = None
    retrieve_url: str | None = None


@dataclass(slots=True, kw_only=True)
class Manifest:
    """What a consumer needs from a KOS manifest."""

    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    references: list[Reference] = field(default_factory=list)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _issuer_sequence(oid: str) -> DicomSequence:
    item = Dataset()
    item.UniversalEntityID = oid
    item.UniversalEntityIDType = "ISO"
    return DicomSequence([item])


def value_type(sop_class_uid: str) -> str:
    """The content item value type of a referenced instance (the dcm4chee rule): IMAGE for an
    "... Image Storage" class, WAVEFORM for "... Waveform Storage", else COMPOSITE."""
    name = UID(sop_class_uid).name
    if name.endswith("Image Storage"):
        return "IMAGE"
    if name.endswith("Waveform Storage"):
        return "WAVEFORM"
    return "COMPOSITE"


def _sop_reference(instance: Instance) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = instance.sop_class_uid
    ref.ReferencedSOPInstanceUID = instance.sop_instance_uid
    return ref


def _requests(study_uid: str, instances: Sequence[Instance]) -> DicomSequence:
    """One Referenced Request item per distinct accession number (Type 2 attributes empty)."""
    items = []
    accessions: dict[str, str | None] = {}
    for i in instances:
        if i.accession_number and i.accession_number not in accessions:
            accessions[i.accession_number] = i.accession_issuer
    for accession, issuer in accessions.items():
        item = Dataset()
        item.StudyInstanceUID = study_uid
        item.ReferencedStudySequence = DicomSequence()
        item.AccessionNumber = accession
        if issuer:
            item.IssuerOfAccessionNumberSequence = _issuer_sequence(issuer)
        item.PlacerOrderNumberImagingServiceRequest = ""
        item.FillerOrderNumberImagingServiceRequest = ""
        item.RequestedProcedureID = ""
        item.RequestedProcedureDescription = ""
        item.RequestedProcedureCodeSequence = DicomSequence()
        items.append(item)
    return DicomSequence(items)


def build_manifest(source: ImagingSource, study_uid: str, instances: Sequence[Instance],
                   *, now: datetime | None = None) -> Dataset:
    """The KOS manifest of study ``study_uid`` referencing every one of ``instances``.

    New SOP Instance and Series Instance UIDs; patient and study attributes from the first
    instance; ``file_meta`` set for Explicit VR Little Endian (``to_part10`` writes the file).
    Raises ValueError for no instances or for an instance of another study.
    """
    if not instances:
        raise ValueError(f"study {study_uid} has no instances to reference")
    strangers = [i.sop_instance_uid for i in instances if i.study_instance_uid != study_uid]
    if strangers:
        raise ValueError(f"instances {strangers[:3]} are not in study {study_uid}")
    now = now or datetime.now()
    first = instances[0]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = UID(KOS_SOP_CLASS)
    ds.SOPInstanceUID = generate_uid()
    # Patient (Type 2: present even when empty); the departmental id stays as it is.
    ds.PatientName = first.patient_name or ""
    ds.PatientID = first.patient_id
    if first.patient_issuer:
        ds.IssuerOfPatientIDQualifiersSequence = _issuer_sequence(first.patient_issuer)
    ds.PatientBirthDate = first.patient_birth_date or ""
    ds.PatientSex = first.patient_sex or ""
    # General Study
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = first.study_date or ""
    ds.StudyTime = first.study_time or ""
    ds.ReferringPhysicianName = first.referring_physician or ""
    ds.StudyID = first.study_id or ""
    ds.AccessionNumber = first.accession_number or ""
    if first.accession_number and first.accession_issuer:
        ds.IssuerOfAccessionNumberSequence = _issuer_sequence(first.accession_issuer)
    if first.study_description:
        ds.StudyDescription = first.study_description
    # Key Object Document Series, General Equipment
    ds.Modality = "KO"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = KOS_SERIES_NUMBER
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence()
    ds.Manufacturer = "xds"
    # Key Object Document
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    requests = _requests(study_uid, instances)
    if len(requests):
        ds.ReferencedRequestSequence = requests
    series: dict[str, list[Instance]] = {}
    seen: set[str] = set()
    for instance in instances:
        if instance.sop_instance_uid not in seen:  # never the same instance twice
            seen.add(instance.sop_instance_uid)
            series.setdefault(instance.series_instance_uid, []).append(instance)
    evidence_series = []
    content = []
    for series_uid, members in series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.RetrieveAETitle = source.settings.dicom_ae_title
        item.RetrieveLocationUID = source.unique_id
        item.RetrieveURL = f"{source.dicomweb_url}/studies/{study_uid}/series/{series_uid}"
        item.ReferencedSOPSequence = DicomSequence([_sop_reference(i) for i in members])
        evidence_series.append(item)
        for instance in members:
            entry = Dataset()
            entry.RelationshipType = "CONTAINS"
            entry.ValueType = value_type(instance.sop_class_uid)
            entry.ReferencedSOPSequence = DicomSequence([_sop_reference(instance)])
            content.append(entry)
    study = Dataset()
    study.ReferencedSeriesSequence = DicomSequence(evidence_series)
    study.StudyInstanceUID = study_uid
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence([study])
    # SR Document Content: the TID 2010 root container
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DicomSequence([_code(*MANIFEST_TITLE)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = DicomSequence([template])
    ds.ContentSequence = DicomSequence(content)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    return ds


def _text(item: Dataset, keyword: str) -> str | None:
    value = item.get(keyword, None)
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        return str(value[0]) if len(value) else None
    return str(value)


def parse_manifest(data: str | Path | BinaryIO | bytes | Dataset) -> Manifest:
    """The references of the KOS in ``data`` (a path, a binary file, bytes, or a Dataset).

    Retrieve Location UID, AE title and URL come from the instance item, else from its series
    item (PS3.3 Hierarchical SOP Instance Reference Macro). Raises ValueError when ``data``
    is not DICOM or not a Key Object Selection document.
    """
    if isinstance(data, Dataset):
        ds = data
    else:
        source = BytesIO(data) if isinstance(data, bytes) else data
        try:
            ds = pydicom.dcmread(source)
        except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a DICOM file: {exc}") from exc
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class != KOS_SOP_CLASS:
        raise ValueError(f"not a Key Object Selection document (SOP Class {sop_class or 'none'})")
    manifest = Manifest(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""))
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", None) or []:
        study_uid = str(study.get("StudyInstanceUID", "") or "")
        for series in study.get("ReferencedSeriesSequence", None) or []:
            series_uid = str(series.get("SeriesInstanceUID", "") or "")
            for sop in series.get("ReferencedSOPSequence", None) or []:
                manifest.references.append(Reference(
                    study_instance_uid=study_uid,
                    series_instance_uid=series_uid,
                    sop_class_uid=str(sop.get("ReferencedSOPClassUID", "") or ""),
                    sop_instance_uid=str(sop.get("ReferencedSOPInstanceUID", "") or ""),
                    retrieve_location_uid=_text(sop, "RetrieveLocationUID")
                    or _text(series, "RetrieveLocationUID"),
                    retrieve_ae_title=_text(sop, "RetrieveAETitle")
                    or _text(series, "RetrieveAETitle"),
                    retrieve_url=_text(sop, "RetrieveURL") or _text(series, "RetrieveURL"),
                ))
    return manifest
