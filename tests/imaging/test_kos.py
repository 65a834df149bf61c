"""The XDS-I.b KOS manifest (RAD TF-3 §4.68.4.1.2.3, TID 2010): every attribute the digest's
§2.1-2.3 lists, a file dcmtk's ``dsrdump`` reads, and ``parse_manifest`` round trips."""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from sqlalchemy import Engine

from tests.imaging.dcmtk import dcmtk
from tests.imaging.dicomgen import CT_IMAGE, MR_IMAGE, GeneratedStudy, make_study
from xds.app import imaging_source
from xds.config import Settings
from xds.dicom.part10 import PREAMBLE, to_part10
from xds.dicom.uids import EXPLICIT_LE, KOS_SOP_CLASS
from xds.imaging.context import ImagingSource
from xds.imaging.intake import store_file
from xds.imaging.kos import build_manifest, parse_manifest, value_type
from xds.store.db import read_connection
from xds.store.instances import Instance, study_instances


@pytest.fixture
def source(engine: Engine, settings: Settings) -> ImagingSource:
    return imaging_source(engine, settings)


def _stored(source: ImagingSource, tmp_path: Path,
            **options: Any) -> tuple[GeneratedStudy, list[Instance]]:
    study = make_study(tmp_path / "study", **options)
    for path in study.files:
        store_file(source, path)
    with read_connection(source.engine) as conn:
        return study, study_instances(conn, study.study_uid)


def test_manifest_has_the_attributes_of_an_xds_i_kos(source: ImagingSource, tmp_path: Path) -> None:
    study, instances = _stored(source, tmp_path, per_series=2)
    ds = build_manifest(source, study.study_uid, instances)

    # SOP Common, Patient, General Study
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.SOPClassUID == KOS_SOP_CLASS
    assert ds.SOPInstanceUID and ds.SOPInstanceUID not in study.instance_uids
    assert ds.PatientID == study.patient_id and str(ds.PatientName) == "Doe^Jane"
    assert ds.PatientBirthDate == "19700101" and ds.PatientSex == "F"
    assert ds.StudyInstanceUID == study.study_uid
    assert (ds.StudyDate, ds.StudyTime) == ("20261201", "101500")
    assert ds.AccessionNumber == study.accession and ds.StudyID == "1"
    assert str(ds.ReferringPhysicianName) == "Ref^Doctor"
    # Key Object Document Series, General Equipment, Key Object Document
    assert ds.Modality == "KO"
    assert ds.SeriesInstanceUID and ds.SeriesInstanceUID not in study.series
    assert ds.SeriesInstanceUID != ds.SOPInstanceUID
    assert ds.SeriesNumber is not None and ds.InstanceNumber == 1
    assert "ReferencedPerformedProcedureStepSequence" in ds
    assert len(ds.ReferencedPerformedProcedureStepSequence) == 0
    assert ds.Manufacturer == "xds"
    assert len(ds.ContentDate) == 8 and len(ds.ContentTime) == 6
    [request] = ds.ReferencedRequestSequence
    assert request.StudyInstanceUID == study.study_uid and request.AccessionNumber == study.accession
    for keyword in ("ReferencedStudySequence", "PlacerOrderNumberImagingServiceRequest",
                    "FillerOrderNumberImagingServiceRequest", "RequestedProcedureID",
                    "RequestedProcedureDescription", "RequestedProcedureCodeSequence"):
        assert keyword in request
    assert "IdenticalDocumentsSequence" not in ds  # one study only
    # SR Document Content: TID 2010 root
    assert ds.ValueType == "CONTAINER" and ds.ContinuityOfContent == "SEPARATE"
    [title] = ds.ConceptNameCodeSequence
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == (
        "113030", "DCM", "Manifest")
    [template] = ds.ContentTemplateSequence
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "2010")


def test_evidence_is_nested_per_series_with_the_retrieve_locations(
    source: ImagingSource, tmp_path: Path
) -> None:
    study, instances = _stored(source, tmp_path, per_series=3)
    ds = build_manifest(source, study.study_uid, instances)

    [evidence] = ds.CurrentRequestedProcedureEvidenceSequence
    assert evidence.StudyInstanceUID == study.study_uid
    series = {s.SeriesInstanceUID: s for s in evidence.ReferencedSeriesSequence}
    assert set(series) == set(study.series)
    for series_uid, (modality, uids) in study.series.items():
        item = series[series_uid]
        assert item.RetrieveAETitle == source.settings.dicom_ae_title
        assert item.RetrieveLocationUID == source.settings.imaging_source_unique_id
        assert item.RetrieveURL == (f"{source.dicomweb_url}/studies/{study.study_uid}"
                                    f"/series/{series_uid}")
        assert [r.ReferencedSOPInstanceUID for r in item.ReferencedSOPSequence] == uids
        cuid = CT_IMAGE if modality == "CT" else MR_IMAGE
        assert {r.ReferencedSOPClassUID for r in item.ReferencedSOPSequence} == {cuid}
        for ref in item.ReferencedSOPSequence:  # locations only at series level (XDS-I.b)
            assert "RetrieveLocationUID" not in ref and "RetrieveAETitle" not in ref
    content = list(ds.ContentSequence)
    assert len(content) == len(instances) == len(study.instance_uids)
    assert [c.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for c in content] == \
        study.instance_uids
    for item in content:
        assert item.RelationshipType == "CONTAINS" and item.ValueType == "IMAGE"
        assert len(item.ReferencedSOPSequence) == 1 and "ConceptNameCodeSequence" not in item


def test_value_types_follow_the_sop_class_name() -> None:
    assert value_type(CT_IMAGE) == "IMAGE"
    assert value_type("1.2.840.10008.5.1.4.1.1.9.1.1") == "WAVEFORM"  # 12-lead ECG
    assert value_type("1.2.840.10008.5.1.4.1.1.88.22") == "COMPOSITE"  # Enhanced SR
    assert value_type("1.2.840.10008.5.1.4.1.1.11.1") == "COMPOSITE"  # presentation state


def test_the_file_is_part_10_and_dsrdump_reads_it(source: ImagingSource, tmp_path: Path) -> None:
    study, instances = _stored(source, tmp_path, per_series=1)
    ds = build_manifest(source, study.study_uid, instances)
    data = to_part10(ds)
    assert data[:132] == PREAMBLE
    back = pydicom.dcmread(BytesIO(data))
    assert back.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert back.file_meta.MediaStorageSOPClassUID == KOS_SOP_CLASS
    assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    dsrdump = dcmtk("dsrdump")
    path = tmp_path / "kos.dcm"
    path.write_bytes(data)
    done = subprocess.run([dsrdump, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Key Object Selection" in done.stdout and "Manifest" in done.stdout
    assert "unknown" not in done.stderr.lower() and "error" not in done.stderr.lower(), done.stderr


def test_parse_manifest_round_trips(source: ImagingSource, tmp_path: Path) -> None:
    study, instances = _stored(source, tmp_path, per_series=2)
    ds = build_manifest(source, study.study_uid, instances)
    path = tmp_path / "kos.dcm"
    path.write_bytes(to_part10(ds))

    for data in (path, BytesIO(path.read_bytes()), path.read_bytes()):
        manifest = parse_manifest(data)
        assert manifest.sop_instance_uid == ds.SOPInstanceUID
        assert manifest.study_instance_uid == study.study_uid
        assert manifest.patient_id == study.patient_id
        assert [r.sop_instance_uid for r in manifest.references] == study.instance_uids
        by_uid = {i.sop_instance_uid: i for i in instances}
        for ref in manifest.references:
            instance = by_uid[ref.sop_instance_uid]
            assert (ref.study_instance_uid, ref.series_instance_uid, ref.sop_class_uid) == (
                study.study_uid, instance.series_instance_uid, instance.sop_class_uid)
            assert ref.retrieve_location_uid == source.unique_id
            assert ref.retrieve_ae_title == source.settings.dicom_ae_title
            assert ref.retrieve_url == (f"{source.dicomweb_url}/studies/{study.study_uid}"
                                        f"/series/{instance.series_instance_uid}")


def test_parse_manifest_prefers_instance_level_locations(source: ImagingSource,
                                                         tmp_path: Path) -> None:
    study, instances = _stored(source, tmp_path, modalities=("CT",), per_series=2)
    ds = build_manifest(source, study.study_uid, instances)
    first = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    first.ReferencedSOPSequence[0].RetrieveLocationUID = "1.2.3.4"
    first.ReferencedSOPSequence[0].RetrieveAETitle = "OTHER_AE"

    refs = parse_manifest(ds).references
    assert (refs[0].retrieve_location_uid, refs[0].retrieve_ae_title) == ("1.2.3.4", "OTHER_AE")
    assert (refs[1].retrieve_location_uid, refs[1].retrieve_ae_title) == (
        source.unique_id, source.settings.dicom_ae_title)


def test_parse_manifest_refuses_what_is_no_kos(tmp_path: Path) -> None:
    image = tmp_path / "image"
    path = make_study(image, modalities=("CT",), per_series=1).files[0]
    with pytest.raises(ValueError, match="Key Object Selection"):
        parse_manifest(path)
    with pytest.raises(ValueError, match="not a DICOM"):
        parse_manifest(b"this is no DICOM file")
    with pytest.raises(ValueError):
        parse_manifest(Dataset())


def test_a_manifest_needs_instances_of_its_study(source: ImagingSource, tmp_path: Path) -> None:
    study, instances = _stored(source, tmp_path, modalities=("CT",), per_series=1)
    with pytest.raises(ValueError):
        build_manifest(source, study.study_uid, [])
    with pytest.raises(ValueError, match="not in study"):
        build_manifest(source, "1.2.3.999", instances)
