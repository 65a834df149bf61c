"""ImagingStudy from a KOS manifest an outside Imaging Document Source registered through
ITI-41: its images live in a real Orthanc, the series endpoint is Orthanc's DICOMweb base and an
instance fetched from it is the one sent; an RPLC replacement shows the current manifest."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.fhir.support import entries, get, r4b
from tests.fhir.test_imagingstudy import MULTIPART_ANY, dataset_bytes
from tests.imaging.dcmtk import dcmtk
from tests.imaging.dicomgen import GeneratedStudy, make_study
from tests.imaging.orthanc import Orthanc, running_orthanc
from tests.imaging.retrieve_support import multipart_parts
from xds.clients.source import provide_and_register
from xds.config import Settings
from xds.dicom.part10 import read_header, to_part10
from xds.fhir.endpoint import address_of, endpoint_id, wado_base
from xds.fhir.context import FhirContext
from xds.fhir.ids import patient_resource_id
from xds.imaging.context import ImagingSource
from xds.imaging.intake import index_entry
from xds.fhir.kosstudy import KosContent, KosStudy, kos_resource
from xds.imaging.kos import Manifest, Reference, build_manifest
from xds.imaging.rad68 import manifest_submission
from xds.mpi.model import PatientIdentifier
from xds.registry.context import Registry
from xds.store.blobs import open_blob_store
from xds.store.instances import Instance

OUTSIDE_SOURCE = "1.3.6.1.4.1.21367.13.80.77"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    with running_orthanc(tmp_path_factory.mktemp("orthanc-fhir")) as running:
        yield running


def _outside(engine: Engine, settings: Settings) -> ImagingSource:
    """The outside source (its own unique id and AE title; never served here)."""
    other = dataclasses.replace(settings, imaging_source_unique_id=OUTSIDE_SOURCE,
                                dicom_ae_title="ORTHANC")
    return ImagingSource(engine, open_blob_store(settings), other)


def _instances(source: ImagingSource, study: GeneratedStudy) -> list[Instance]:
    return [index_entry(source, read_header(path)) for path in study.files]


def _register(server: str, source: ImagingSource, orthanc: Orthanc, instances: list[Instance],
              patient_cx: str, tmp: Path, replaces: str | None = None) -> str:
    """ITI-41 of a KOS whose Retrieve URLs point at Orthanc; the entryUUID."""
    study_uid = instances[0].study_instance_uid
    manifest = build_manifest(source, study_uid, instances)
    for series in manifest.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence:
        series.RetrieveURL = (f"{orthanc.dicomweb_url}/studies/{study_uid}/series/"
                              f"{series.SeriesInstanceUID}")
    submission = manifest_submission(source, manifest, instances, patient_cx,
                                     replaces_entry_uuid=replaces)
    path = tmp / f"{manifest.SOPInstanceUID}.dcm"
    path.write_bytes(to_part10(manifest))
    response = provide_and_register(server + "/xds/repository", submission, [path])
    assert response.success, response.errors
    return submission.document_entries[0].entry_uuid


@pytest.fixture(scope="module")
def registered(server: str, engine: Engine, settings: Settings, orthanc: Orthanc,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CT+MR study sent to Orthanc, its KOS registered by the outside source."""
    from xds.store.patients import add_patient

    tmp = tmp_path_factory.mktemp("kos-study")
    study = make_study(tmp / "study", modalities=("CT", "MR"), per_series=2, rows=8, columns=8)
    patient = PatientIdentifier(settings.affinity_domain, study.patient_id)
    add_patient(engine, patient.cx)
    subprocess.run([dcmtk("storescu"), "-aec", orthanc.ae_title, "127.0.0.1",
                    str(orthanc.dicom_port), *map(str, study.files)], check=True,
                   capture_output=True)
    source = _outside(engine, settings)
    instances = _instances(source, study)
    entry = _register(server, source, orthanc, instances, patient.cx, tmp)
    return {"study": study, "patient": patient, "entry": entry, "source": source,
            "instances": instances, "tmp": tmp}


def _patient_ref(patient: PatientIdentifier) -> str:
    resource_id = patient_resource_id(patient)
    assert resource_id
    return f"Patient/{resource_id}"


def test_kos_study_by_patient_points_at_orthanc(
        server: str, registered: dict[str, Any], orthanc: Orthanc) -> None:
    study: GeneratedStudy = registered["study"]
    response = get(f"{server}/fhir/ImagingStudy",
                   {"patient": _patient_ref(registered["patient"]),
                    "_include": "ImagingStudy:endpoint"})
    assert response.status_code == 200, response.text
    bundle = response.json()
    [found] = entries(bundle)
    assert found["id"] == study.study_uid
    assert found["numberOfSeries"] == 2 and found["numberOfInstances"] == 4
    assert {m["code"] for m in found["modality"]} == {"CT", "MR"}
    assert found["started"] == "2026-12-01T10:15:00Z"
    assert found["identifier"][1]["value"] == study.accession
    [endpoint] = entries(bundle, "include")
    r4b(endpoint)
    assert endpoint["address"] == orthanc.dicomweb_url
    series = found["series"][0]
    assert series["endpoint"] == [{"reference": f"Endpoint/{endpoint['id']}"}]
    sop = series["instance"][0]["uid"]
    response = get(f"{server}/fhir/Endpoint/{endpoint['id']}")
    assert response.status_code == 200 and response.json() == endpoint
    url = f"{endpoint['address']}/studies/{study.study_uid}/series/{series['uid']}/instances/{sop}"
    answer = httpx.get(url, headers={"Accept": MULTIPART_ANY}, timeout=60)
    assert answer.status_code == 200, answer.text
    _, parts = multipart_parts(answer)
    original = next(p for p in study.files if p.name == f"{sop}.dcm")
    assert dataset_bytes(parts[0].data) == dataset_bytes(original.read_bytes())


def test_kos_study_by_identifier_and_read(server: str, registered: dict[str, Any]) -> None:
    study: GeneratedStudy = registered["study"]
    for value in (f"urn:dicom:uid|urn:oid:{study.study_uid}", study.study_uid, study.accession):
        response = get(f"{server}/fhir/ImagingStudy", {"identifier": value})
        assert [r["id"] for r in entries(response.json())] == [study.study_uid], value
    response = get(f"{server}/fhir/ImagingStudy/{study.study_uid}")
    assert response.status_code == 200, response.text
    r4b(response.json())
    assert response.json()["numberOfInstances"] == 4
    response = get(f"{server}/fhir/ImagingStudy",
                   {"patient": _patient_ref(registered["patient"]), "modality": "US"})
    assert response.json()["total"] == 0


def test_rplc_replacement_shows_the_current_manifest(
        server: str, registered: dict[str, Any], orthanc: Orthanc) -> None:
    study: GeneratedStudy = registered["study"]
    ct_series = next(uid for uid, (modality, _) in study.series.items() if modality == "CT")
    kept = [i for i in registered["instances"] if i.series_instance_uid == ct_series]
    entry = _register(server, registered["source"], orthanc, kept,
                      registered["patient"].cx, registered["tmp"], replaces=registered["entry"])
    registered["entry"] = entry
    response = get(f"{server}/fhir/ImagingStudy/{study.study_uid}")
    assert response.status_code == 200, response.text
    current = response.json()
    assert [s["uid"] for s in current["series"]] == [ct_series]
    assert current["numberOfInstances"] == 2
    response = get(f"{server}/fhir/ImagingStudy",
                   {"patient": _patient_ref(registered["patient"])})
    assert [r["numberOfSeries"] for r in entries(response.json())] == [1]


def test_endpoint_ids_round_trip(engine: Engine, settings: Settings) -> None:
    ctx = FhirContext(engine, dataclasses.replace(
        settings, imaging_endpoints="1.2.3.4=http://pacs.example/wado"), Registry(engine, settings))
    assert endpoint_id(ctx, "http://pacs.example/wado") == "1.2.3.4"
    assert wado_base("http://h:1/dicom-web/studies/1.2/series/3") == "http://h:1/dicom-web"
    for address in ("http://127.0.0.1:8042/dicom-web", "https://pacs.example.org/rs"):
        encoded = endpoint_id(ctx, address)
        assert encoded is not None and len(encoded) <= 64
        assert address_of(ctx, encoded) == address
    assert endpoint_id(ctx, "http://" + "x" * 80) is None
    assert address_of(ctx, "1.2.3.4") == "http://pacs.example/wado"



def test_a_series_without_retrieve_url_uses_the_configured_location(
        engine: Engine, settings: Settings) -> None:
    ctx = FhirContext(engine, dataclasses.replace(
        settings, imaging_endpoints="1.2.3.4=http://pacs.example/wado"), Registry(engine, settings))
    refs = [Reference("1.2.9", "1.2.9.1", "1.2.840.10008.5.1.4.1.1.7", "1.2.9.1.1",
                      retrieve_location_uid="1.2.3.4"),
            Reference("1.2.9", "1.2.9.2", "1.2.840.10008.5.1.4.1.1.7", "1.2.9.2.1",
                      retrieve_location_uid="1.2.3.5")]
    content = KosContent(Manifest(sop_instance_uid="1.2.9.9", series_instance_uid="1.2.9.8",
                                  study_instance_uid="1.2.9", patient_id="P1"),
                         "20260102", None, None, None, None)
    study = KosStudy("1.2.9", PatientIdentifier(settings.affinity_domain, "P1"), content, refs,
                     ["US"])
    resource = kos_resource(ctx, study)
    r4b(resource)
    first, second = resource["series"]
    assert first["endpoint"] == [{"reference": "Endpoint/1.2.3.4"}]
    assert "endpoint" not in second, "an unknown location without a URL has no endpoint"
    assert first["modality"]["code"] == "US", "the eventCodeList modality is the fallback"
    assert resource["started"] == "2026-01-02"
    assert resource["endpoint"] == [{"reference": "Endpoint/1.2.3.4"}]
