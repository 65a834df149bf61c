"""ImagingStudy and Endpoint from the instance index over real HTTP: a study C-STOREd with dcmtk
storescu is found by patient, identifier, modality and started, and its Endpoint's WADO-RS
gives the stored bytes back; plus _include, _sort, paging, _summary and the refusals."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from typing import Any

import json

import httpx
import pydicom
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.fhir.support import check_outcome, entries, get, r4b
from tests.imaging.dcmtk import dcmtk
from tests.imaging.dicomgen import GeneratedStudy, make_study
from tests.imaging.retrieve_support import multipart_parts
from xds.app import imaging_source
from xds.cli import app as cli
from xds.config import Settings
from xds.fhir.ids import patient_resource_id
from xds.imaging.publish import publish_study
from xds.mpi.model import PatientIdentifier
from xds.store.patients import add_patient

MULTIPART_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def dataset_bytes(part10: bytes) -> bytes:
    """The bytes after the file meta group of a Part-10 file."""
    assert part10[128:132] == b"DICM" and part10[132:138] == b"\x02\x00\x00\x00UL"
    (group_length,) = struct.unpack("<L", part10[140:144])
    return part10[144 + group_length:]


def _storescu(settings: Settings, directory: Path) -> None:
    result = subprocess.run(
        [dcmtk("storescu"), "-aec", settings.dicom_ae_title, "-aet", "TEST_SCU", "+sd",
         "127.0.0.1", str(settings.dicom_port), str(directory)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def stored(server: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[GeneratedStudy, GeneratedStudy]:
    """Two studies of one patient (CT+MR, then CT only), C-STOREd to the server."""
    out = tmp_path_factory.mktemp("fhir-studies")
    first = make_study(out / "a", modalities=("CT", "MR"), per_series=2, rows=8, columns=8)
    second = make_study(out / "b", modalities=("CT",), per_series=1, rows=8, columns=8,
                        patient_id=first.patient_id)
    for path in second.files:  # a later day, so started orders them
        ds = pydicom.dcmread(path)
        ds.StudyDate = "20261205"
        ds.save_as(path, enforce_file_format=True)
    _storescu(settings, out / "a")
    _storescu(settings, out / "b")
    return first, second


def _patient_id(settings: Settings, study: GeneratedStudy) -> str:
    resource_id = patient_resource_id(PatientIdentifier(settings.patient_issuer, study.patient_id))
    assert resource_id
    return resource_id


def _search(server: str, params: Any, status: int = 200, **headers: str) -> dict[str, Any]:
    response = get(f"{server}/fhir/ImagingStudy", params, **headers)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [r["id"] for r in entries(bundle)]


def test_study_by_patient_has_the_dicom_mapping(
        server: str, settings: Settings, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, second = stored
    bundle = _search(server, {"patient": f"Patient/{_patient_id(settings, first)}"})
    assert bundle["total"] == 2
    assert sorted(_ids(bundle)) == sorted([first.study_uid, second.study_uid])
    study = next(r for r in entries(bundle) if r["id"] == first.study_uid)
    r4b(study)
    assert study["identifier"][0] == {"system": "urn:dicom:uid",
                                      "value": f"urn:oid:{first.study_uid}"}
    assert study["identifier"][1]["value"] == first.accession
    assert study["identifier"][1]["type"]["coding"][0]["code"] == "ACSN"
    assert study["status"] == "available"
    assert {m["code"] for m in study["modality"]} == {"CT", "MR"}
    assert study["subject"]["reference"] == f"Patient/{_patient_id(settings, first)}"
    assert study["started"] == "2026-12-01T10:15:00Z"
    assert study["numberOfSeries"] == 2 and study["numberOfInstances"] == 4
    assert study["description"] == "CT study"
    by_uid = {s["uid"]: s for s in study["series"]}
    assert set(by_uid) == set(first.series)
    for series_uid, (modality, uids) in first.series.items():
        series = by_uid[series_uid]
        assert series["modality"]["code"] == modality
        assert series["numberOfInstances"] == 2
        assert [i["uid"] for i in series["instance"]] == uids
        assert series["instance"][0]["sopClass"]["system"] == "urn:ietf:rfc:3986"
        assert series["instance"][0]["number"] == 1
    assert study["endpoint"] == [{"reference": f"Endpoint/{settings.imaging_source_unique_id}"}]


def test_read_endpoint_and_wado_rs_give_the_stored_bytes(
        server: str, settings: Settings, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, _ = stored
    response = get(f"{server}/fhir/ImagingStudy/{first.study_uid}")
    assert response.status_code == 200, response.text
    study = response.json()
    r4b(study)
    endpoint_ref = study["endpoint"][0]["reference"]
    response = get(f"{server}/fhir/{endpoint_ref}")
    assert response.status_code == 200, response.text
    endpoint = response.json()
    r4b(endpoint)
    assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
    assert endpoint["payloadMimeType"] == ["application/dicom"]
    series = study["series"][0]
    sop = series["instance"][0]["uid"]
    url = f"{endpoint['address']}/studies/{first.study_uid}/series/{series['uid']}/instances/{sop}"
    answer = httpx.get(url, headers={"Accept": MULTIPART_ANY}, timeout=60)
    assert answer.status_code == 200, answer.text
    _, parts = multipart_parts(answer)
    path = next(p for p in first.files if p.name == f"{sop}.dcm")
    assert len(parts) == 1
    # C-STORE carries the data set; the stored file meta is the SCP's own.
    assert dataset_bytes(parts[0].data) == dataset_bytes(path.read_bytes())


@pytest.mark.parametrize("kind", ["uid", "bare-uid", "accession", "accession-no-system"])
def test_study_by_identifier(server: str, stored: tuple[GeneratedStudy, GeneratedStudy],
                             kind: str, settings: Settings) -> None:
    first, _ = stored
    value = {"uid": f"urn:dicom:uid|urn:oid:{first.study_uid}", "bare-uid": first.study_uid,
             "accession": f"|{first.accession}", "accession-no-system": first.accession}[kind]
    assert _ids(_search(server, {"identifier": value})) == [first.study_uid]


def test_modality_series_instance_and_class_filters(
        server: str, settings: Settings, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, second = stored
    patient = f"Patient/{_patient_id(settings, first)}"
    assert _ids(_search(server, {"patient": patient, "modality": "MR"})) == [first.study_uid]
    assert sorted(_ids(_search(server, {"patient": patient, "modality": "CT"}))) == sorted(
        [first.study_uid, second.study_uid])
    assert _ids(_search(server, {"patient": patient, "modality": "US"})) == []
    series_uid = next(iter(second.series))
    assert _ids(_search(server, {"series": series_uid})) == [second.study_uid]
    assert _ids(_search(server, {"instance": second.instance_uids[0]})) == [second.study_uid]
    assert len(_ids(_search(server, {"patient": patient,
                                     "dicom-class": "urn:oid:1.2.840.10008.5.1.4.1.1.4"}))) == 1


@pytest.mark.parametrize(("started", "found"), [
    ("2026-12-01", ["a"]), ("ge2026-12-01", ["a", "b"]), ("gt2026-12-01", ["b"]),
    ("lt2026-12-01", []), ("le2026-12", ["a", "b"]), ("ne2026-12-01", ["b"]),
    ("2026-12-01T10:15:00Z", ["a"]), ("2025", []),
])
def test_started_ranges(server: str, settings: Settings,
                        stored: tuple[GeneratedStudy, GeneratedStudy],
                        started: str, found: list[str]) -> None:
    first, second = stored
    uids = {"a": first.study_uid, "b": second.study_uid}
    bundle = _search(server, {"patient": f"Patient/{_patient_id(settings, first)}",
                              "started": started, "_sort": "started"})
    assert _ids(bundle) == [uids[k] for k in found]


def test_sort_both_ways_paging_and_summary(
        server: str, settings: Settings, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, second = stored
    patient = f"Patient/{_patient_id(settings, first)}"
    assert _ids(_search(server, {"patient": patient, "_sort": "started"})) == [
        first.study_uid, second.study_uid]
    assert _ids(_search(server, {"patient": patient, "_sort": "-started"})) == [
        second.study_uid, first.study_uid]
    walked: list[str] = []
    bundle = _search(server, {"patient": patient, "_count": "1", "_sort": "-started"})
    while True:
        walked += _ids(bundle)
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        response = get(following[0])
        assert response.status_code == 200
        bundle = response.json()
    assert walked == [second.study_uid, first.study_uid]
    summary = _search(server, {"patient": patient, "_summary": "count"})
    r4b(summary)
    assert summary["total"] == 2 and "entry" not in summary


def test_include_patient_and_endpoint_once(
        server: str, settings: Settings, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, _ = stored
    patient_id = _patient_id(settings, first)
    bundle = _search(server, [("patient", patient_id), ("_include", "ImagingStudy:patient"),
                              ("_include", "ImagingStudy:endpoint")])
    included = entries(bundle, "include")
    assert sorted((r["resourceType"], r["id"]) for r in included) == [
        ("Endpoint", settings.imaging_source_unique_id), ("Patient", patient_id)]
    for resource in included:
        r4b(resource)


def test_search_without_patient_answers_from_the_index(
        server: str, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, second = stored
    bundle = _search(server, {"_summary": "count"})
    assert bundle["total"] >= 2
    bundle = _search(server, {"endpoint": "Endpoint/nonexistent", "series": next(iter(first.series))})
    assert _ids(bundle) == []


# --- refusals ------------------------------------------------------------------------------

def test_unknown_study_and_endpoint_are_404(server: str) -> None:
    check_outcome(get(f"{server}/fhir/ImagingStudy/1.2.3.4.5.6.7.8.9"), 404, "not-found")
    check_outcome(get(f"{server}/fhir/Endpoint/1.2.3.999"), 404, "not-found")
    check_outcome(get(f"{server}/fhir/Endpoint/hZZZ"), 404, "not-found")
    check_outcome(get(f"{server}/fhir/Endpoint/x"), 404, "not-found")


def test_unknown_patient_reference_is_404_unknown_identifier_matches_nothing(
        server: str) -> None:
    check_outcome(get(f"{server}/fhir/ImagingStudy", {"patient": "Patient/NOPE-1.2.3.4.99"}),
                  404, "not-found")
    bundle = _search(server, {"patient.identifier": "urn:oid:1.2.3.4.99|NOPE"})
    assert bundle["total"] == 0


@pytest.mark.parametrize(("params", "status"), [
    ({"started": "2026-13-45"}, 400),
    ({"colour": "red"}, 400),
    ({"_include": "ImagingStudy:referrer"}, 400),
    ({"_sort": "description"}, 400),
    ({"patient": "Practitioner/1"}, 400),
    ({"identifier": "http://example.com|1"}, 400),
])
def test_malformed_searches_are_400(server: str, params: dict[str, str], status: int) -> None:
    check_outcome(get(f"{server}/fhir/ImagingStudy", params), status)


def test_unknown_parameter_is_a_warning_when_lenient(
        server: str, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, _ = stored
    bundle = _search(server, {"colour": "red", "identifier": first.study_uid},
                     Prefer="handling=lenient")
    assert _ids(bundle) == [first.study_uid]
    outcomes = entries(bundle, "outcome")
    assert outcomes and outcomes[0]["issue"][0]["severity"] == "warning"


@pytest.mark.parametrize("name", ["identifier", "modality", "series", "instance", "dicom-class",
                                  "status", "patient.identifier"])
def test_injection_shaped_values_match_nothing(server: str, name: str) -> None:
    value = "' OR 1=1--"
    if name == "patient.identifier":
        value = "urn:oid:1.2.3|' OR 1=1--"
    response = get(f"{server}/fhir/ImagingStudy", {name: value})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["total"] == 0
    check = get(f"{server}/fhir/ImagingStudy/' OR 1=1--")
    assert check.status_code in (400, 404)


def test_a_study_held_here_and_published_as_kos_is_answered_once_from_the_index(
        server: str, engine: Engine, settings: Settings,
        stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, second = stored
    add_patient(engine, PatientIdentifier(settings.patient_issuer, first.patient_id).cx)
    publish_study(imaging_source(engine, settings), first.study_uid)
    bundle = _search(server, {"patient": f"Patient/{_patient_id(settings, first)}"})
    assert sorted(_ids(bundle)) == sorted([first.study_uid, second.study_uid])
    assert _ids(_search(server, {"identifier": first.study_uid})) == [first.study_uid]
    study = get(f"{server}/fhir/ImagingStudy/{first.study_uid}").json()
    assert study["numberOfInstances"] == 4 and study["series"][0]["instance"][0]["number"] == 1


# --- xds fhir studies ----------------------------------------------------------------------

def test_cli_lists_the_studies_as_json_and_as_a_table(
        server: str, settings: Settings, stored: tuple[GeneratedStudy, GeneratedStudy]) -> None:
    first, second = stored
    runner = CliRunner()
    cx = PatientIdentifier(settings.patient_issuer, first.patient_id).cx
    result = runner.invoke(cli, ["fhir", "studies", "--patient", cx, "--url", server, "--json"])
    assert result.exit_code == 0, result.output
    assert [s["id"] for s in json.loads(result.stdout)] == [second.study_uid, first.study_uid]
    result = runner.invoke(cli, ["fhir", "studies", "--patient", _patient_id(settings, first),
                                 "--url", server], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert first.study_uid in result.stdout and "/dicomweb" in result.stdout
    by_identifier = f"urn:oid:{settings.patient_issuer}|{first.patient_id}"
    result = runner.invoke(cli, ["fhir", "studies", "--patient", by_identifier, "--url", server,
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 2


def test_cli_prints_the_fhir_error_and_exits_1(server: str) -> None:
    result = CliRunner().invoke(cli, ["fhir", "studies", "--patient", "NOPE-1.2.3.4.99",
                                      "--url", server])
    assert result.exit_code == 1
    assert "Patient/NOPE-1.2.3.4.99 is not known" in result.output
    result = CliRunner().invoke(cli, ["fhir", "studies", "--patient", "bad|x", "--url", server])
    assert result.exit_code == 2
