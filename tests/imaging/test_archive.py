"""A study held in a real Orthanc: this Imaging Document Source publishes it from the archive's
DICOMweb, and the Imaging Document Consumer (``xds imaging fetch``) gets every instance back
through RAD-69, relayed from Orthanc."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.imaging.dcmtk import dcmtk
from tests.imaging.dicomgen import make_study
from tests.imaging.orthanc import Orthanc, running_orthanc
from tests.server import free_port, running_server
from xds.app import build_app, imaging_source
from xds.cli import app as cli
from xds.clients.imaging import fetch
from xds.config import Settings
from xds.imaging.publish import publish_study
from xds.imaging.rad68 import PublishError
from xds.store.db import read_connection
from xds.store.instances import study_instances

ARCHIVE_SOURCE_UID = "1.3.6.1.4.1.21367.13.80.99"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="module")
def archive_settings(settings: Settings, orthanc: Orthanc, server: str) -> Settings:
    """A second Imaging Document Source, on the same database, whose images live in Orthanc."""
    return dataclasses.replace(
        settings, port=free_port(), dicom_port=0, actors="imaging",
        imaging_source_unique_id=ARCHIVE_SOURCE_UID, dicomweb_archive_url=orthanc.dicomweb_url,
        imaging_repository_url=server + "/xds/repository")


@pytest.fixture(scope="module")
def archive_server(archive_settings: Settings) -> Iterator[str]:
    with running_server(build_app(archive_settings), port=archive_settings.port) as base:
        yield base


def _send_to_orthanc(orthanc: Orthanc, files: list[Path]) -> None:
    subprocess.run([dcmtk("storescu"), "-aec", orthanc.ae_title, "127.0.0.1", str(orthanc.dicom_port),
                    *map(str, files)], check=True, capture_output=True)


def test_a_study_held_in_orthanc_is_published_and_fetched_through_rad69(
        tmp_path: Path, orthanc: Orthanc, archive_settings: Settings, archive_server: str,
        server: str, engine: Engine, settings: Settings,
        new_patient: Callable[..., str]) -> None:
    study = make_study(tmp_path / "study", modalities=("CT", "MR"), per_series=4)
    patient = new_patient(f"{study.patient_id}^^^&{settings.affinity_domain}&ISO")
    _send_to_orthanc(orthanc, study.files)
    source = imaging_source(engine, archive_settings)

    result = publish_study(source, study.study_uid)

    assert result.instances == len(study.files)
    with read_connection(engine) as conn:
        indexed = study_instances(conn, study.study_uid)
    assert {i.sop_instance_uid for i in indexed} == set(study.instance_uids)
    assert all(i.sha256 is None and i.archive_url and i.archive_url.startswith(
        orthanc.dicomweb_url) for i in indexed), "the bytes stay in the archive"

    out = tmp_path / "fetched"
    got = fetch(server + "/xds/registry", patient, out, study_uid=study.study_uid,
                sources={ARCHIVE_SOURCE_UID: archive_server + "/xds/imaging"},
                repositories={settings.repository_unique_id: server + "/xds/repository"})

    assert not got.errors and not got.missing
    assert got.studies == {study.study_uid}
    assert len(got.files) == len(study.files)
    originals = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in study.files}
    for path in got.files:
        ds = pydicom.dcmread(path)
        original = originals[ds.SOPInstanceUID]
        assert ds.PixelData == original.PixelData
        assert ds.SeriesInstanceUID == original.SeriesInstanceUID
        assert path.parent.name == ds.SeriesInstanceUID


def test_publishing_a_study_orthanc_does_not_hold_sends_nothing(
        archive_settings: Settings, archive_server: str, engine: Engine) -> None:
    source = imaging_source(engine, archive_settings)
    with pytest.raises(PublishError, match="no instances"):
        publish_study(source, "1.2.3.4.5.6.7.8.9.424242")


def test_xds_imaging_fetch_cli_saves_the_study_and_prints_a_summary(
        tmp_path: Path, orthanc: Orthanc, archive_settings: Settings, archive_server: str,
        server: str, engine: Engine, settings: Settings,
        new_patient: Callable[..., str]) -> None:
    study = make_study(tmp_path / "study", modalities=("CT",), per_series=3)
    patient = new_patient(f"{study.patient_id}^^^&{settings.affinity_domain}&ISO")
    _send_to_orthanc(orthanc, study.files)
    publish_study(imaging_source(engine, archive_settings), study.study_uid)
    out = tmp_path / "out"

    run = CliRunner().invoke(cli, [
        "imaging", "fetch", "--patient", patient, "--accession", study.accession,
        "--out", str(out), "--registry-url", server + "/xds/registry",
        "--repository", f"{settings.repository_unique_id}={server}/xds/repository",
        "--source", f"{ARCHIVE_SOURCE_UID}={archive_server}/xds/imaging"])

    assert run.exit_code == 0, run.output
    saved = sorted(out.rglob("*.dcm"))
    assert {p.stem for p in saved} == set(study.instance_uids)
    assert "instances saved" in run.output


def test_fetch_for_a_patient_without_manifests_exits_1(
        server: str, new_patient: Callable[..., str], tmp_path: Path) -> None:
    patient = new_patient()
    run = CliRunner().invoke(cli, [
        "imaging", "fetch", "--patient", patient, "--out", str(tmp_path / "none"),
        "--registry-url", server + "/xds/registry"])
    assert run.exit_code == 1
    assert "no imaging manifest found" in run.output
