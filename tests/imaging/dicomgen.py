"""Synthetic DICOM studies for the imaging tests: CT and MR series written as Part-10 files.

Pixel data are random bytes of the right size (no NumPy needed); every UID is fresh, so tests
never collide with each other or with earlier runs against the same database.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, generate_uid

from xds.dicom.uids import EXPLICIT_LE, IMPLICIT_LE

__all__ = ["CT_IMAGE", "MR_IMAGE", "GeneratedStudy", "make_instance", "make_study", "write_study"]

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
_SOP_CLASS = {"CT": CT_IMAGE, "MR": MR_IMAGE}
#: Where the generated UIDs live (pydicom's example root + a suffix of ours).
UID_ROOT = "1.2.826.0.1.3680043.8.498."


@dataclass(slots=True)
class GeneratedStudy:
    """What the tests need to know about a study they generated."""

    study_uid: str
    patient_id: str
    accession: str
    files: list[Path] = field(default_factory=list)
    #: series UID -> (modality, [SOP Instance UIDs])
    series: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    @property
    def instance_uids(self) -> list[str]:
        return [uid for _, uids in self.series.values() for uid in uids]


def make_instance(
    *, study_uid: str, series_uid: str, modality: str, number: int, patient_id: str,
    accession: str, series_number: int = 1, rows: int = 64, columns: int = 64,
    transfer_syntax: str = EXPLICIT_LE, patient_name: str = "Doe^Jane", issuer: str | None = None,
    seed: int | None = None,
) -> Dataset:
    """One image of a study, with file meta, ready for ``save_as(enforce_file_format=True)``."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = UID(_SOP_CLASS[modality])
    ds.SOPInstanceUID = generate_uid(prefix=UID_ROOT)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    if issuer:
        ds.IssuerOfPatientID = issuer
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = "20261201"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.StudyDescription = f"{modality} study"
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"{modality} series {series_number}"
    ds.BodyPartExamined = "CHEST" if modality == "CT" else "HEAD"
    ds.InstanceNumber = number
    ds.Manufacturer = "XDS test generator"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    rng = random.Random(seed if seed is not None else ds.SOPInstanceUID)
    ds.PixelData = rng.randbytes(rows * columns * 2)
    ds["PixelData"].VR = "OW"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.file_meta = meta
    return ds


def make_study(
    out_dir: Path, *, modalities: Sequence[str] = ("CT", "MR"), per_series: int = 3,
    series_per_modality: int = 1, patient_id: str | None = None, accession: str | None = None,
    transfer_syntax: str = EXPLICIT_LE, rows: int = 64, columns: int = 64,
    study_uid: str | None = None, issuer: str | None = None,
) -> GeneratedStudy:
    """Write a study (one or more series per modality) as files under ``out_dir``."""
    study = GeneratedStudy(
        study_uid=study_uid or generate_uid(prefix=UID_ROOT),
        patient_id=patient_id or f"DEPT{random.randrange(10**9):09d}",
        accession=accession or f"ACC{random.randrange(10**7):07d}")
    out_dir.mkdir(parents=True, exist_ok=True)
    number = 0
    for modality in modalities:
        for s in range(series_per_modality):
            series_uid = generate_uid(prefix=UID_ROOT)
            uids: list[str] = []
            for i in range(per_series):
                number += 1
                ds = make_instance(
                    study_uid=study.study_uid, series_uid=series_uid, modality=modality,
                    number=i + 1, patient_id=study.patient_id, accession=study.accession,
                    series_number=len(study.series) + 1, rows=rows, columns=columns,
                    transfer_syntax=transfer_syntax, issuer=issuer)
                path = out_dir / f"{ds.SOPInstanceUID}.dcm"
                ds.save_as(path, enforce_file_format=True,
                           implicit_vr=transfer_syntax == IMPLICIT_LE, little_endian=True)
                study.files.append(path)
                uids.append(str(ds.SOPInstanceUID))
            study.series[series_uid] = (modality, uids)
            del s
    return study


write_study = make_study
