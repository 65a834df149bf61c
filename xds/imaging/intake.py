"""Imaging Document Source intake: a Part-10 instance into the blob store and the instance index.

Used by the C-STORE SCP and by ``xds import-dicom``. The file is checked (DICOM, complete,
UIDs present) before anything is stored; bytes are kept as received, addressed by SHA-256.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydicom.dataset import Dataset

from xds.dicom.part10 import NotDicomError, Part10Header, read_header
from xds.imaging.context import ImagingSource
from xds.model.values import is_oid, now_dtm
from xds.store import documents, instances
from xds.store.blobs import READ_CHUNK, digest_file
from xds.store.db import write_transaction
from xds.store.instances import Instance

__all__ = ["store_file", "index_entry", "issuer_of", "NotDicomError"]

log = logging.getLogger("xds.imaging.intake")


def store_file(source: ImagingSource, path: Path, *, move: bool = False) -> Instance:
    """Store the Part-10 file at ``path`` and index it; the indexed Instance.

    ``move`` adopts the file into the store (a temporary file of the SCP) instead of copying it.
    An instance already stored with the same SOP Instance UID is replaced (its study then needs
    a new manifest); identical bytes change nothing. Raises NotDicomError for a file that is not
    a complete DICOM instance, StoreFull when there is no room; nothing is stored then.
    """
    header = read_header(path)
    if move:
        info = digest_file(path)
        new_blob = source.blobs.adopt(path, info)
    else:
        with path.open("rb") as f:
            info, new_blob = source.blobs.put(iter(lambda: f.read(READ_CHUNK), b""))
    entry = index_entry(source, header, sha256=info.sha256, size=info.size)
    try:
        with write_transaction(source.engine) as conn:
            previous = instances.upsert_instance(conn, entry)
            documents.lock_blobs(conn, [info.sha256, *([previous] if previous else [])])
            if not source.blobs.exists(info.sha256):  # removed meanwhile: see lock_blobs
                raise FileNotFoundError(f"blob {info.sha256} was removed concurrently; retry")
            if previous is not None and previous != info.sha256:
                documents.delete_unreferenced(conn, source.blobs, [previous])
    except BaseException:
        if new_blob:
            with write_transaction(source.engine) as conn:
                documents.delete_unreferenced(conn, source.blobs, [info.sha256])
        raise
    log.debug("stored %s (study %s)", entry.sop_instance_uid, entry.study_instance_uid)
    return entry


def issuer_of(ds: Dataset, default: str) -> str:
    """Assigning authority (OID) of the dataset's Patient ID.

    The ISO UniversalEntityID of Issuer of Patient ID Qualifiers (0010,0024), else Issuer of
    Patient ID (0010,0021) when it is an OID, else ``default``.
    """
    issuer = str(ds.get("IssuerOfPatientID", "") or "")
    return (_iso_entity(ds, "IssuerOfPatientIDQualifiersSequence")
            or (issuer if is_oid(issuer) else default))


def _iso_entity(ds: Dataset, keyword: str) -> str | None:
    """The first ISO UniversalEntityID of the sequence ``keyword`` (an issuer's OID), or None."""
    for item in ds.get(keyword, None) or []:
        uid = str(item.get("UniversalEntityID", "") or "")
        if uid and str(item.get("UniversalEntityIDType", "ISO")) == "ISO":
            return uid
    return None


def _text(ds: Dataset, keyword: str, limit: int = 256) -> str | None:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return None
    return str(value)[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword, None)
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def index_entry(source: ImagingSource, header: Part10Header, *, sha256: str | None = None,
                size: int | None = None, archive_url: str | None = None) -> Instance:
    """The index row for an instance whose header is ``header``."""
    ds = header.dataset
    return Instance(
        sop_instance_uid=header.uid("SOPInstanceUID"),
        study_instance_uid=header.uid("StudyInstanceUID"),
        series_instance_uid=header.uid("SeriesInstanceUID"),
        sop_class_uid=header.uid("SOPClassUID"),
        transfer_syntax_uid=header.transfer_syntax_uid,
        patient_id=_text(ds, "PatientID", 64) or "",
        patient_issuer=issuer_of(ds, source.settings.patient_issuer),
        received=now_dtm(),
        instance_number=_int(ds, "InstanceNumber"),
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_text(ds, "PatientBirthDate", 8),
        patient_sex=_text(ds, "PatientSex", 16),
        accession_number=_text(ds, "AccessionNumber", 64),
        accession_issuer=_iso_entity(ds, "IssuerOfAccessionNumberSequence"),
        study_id=_text(ds, "StudyID", 16),
        study_date=_text(ds, "StudyDate", 8),
        study_time=_text(ds, "StudyTime", 16),
        study_description=_text(ds, "StudyDescription"),
        referring_physician=_text(ds, "ReferringPhysicianName"),
        modality=_text(ds, "Modality", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription"),
        body_part=_text(ds, "BodyPartExamined", 16),
        laterality=_text(ds, "Laterality", 16) or _text(ds, "ImageLaterality", 16),
        sha256=sha256,
        size=size,
        archive_url=archive_url,
    )
