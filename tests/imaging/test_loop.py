"""The whole XDS-I.b loop over real sockets: a modality sends a study with dcmtk storescu, the
source publishes its manifest (RAD-68), and the Imaging Document Consumer finds it (ITI-18),
reads the KOS (ITI-43) and retrieves every instance (RAD-69), byte-identical."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.imaging.dicomgen import make_study
from tests.imaging.test_scp import _dataset_bytes, _storescu
from xds.app import imaging_source
from xds.cli import app as cli
from xds.clients.imaging import fetch, find_manifests
from xds.config import Settings
from xds.imaging.publish import publish_study


def test_storescu_publish_find_kos_rad69_returns_the_sent_instances(
        tmp_path: Path, server: str, engine: Engine, settings: Settings,
        new_patient: Callable[..., str]) -> None:
    study = make_study(tmp_path / "study", modalities=("CT", "MR"), per_series=5,
                       series_per_modality=2)
    patient = new_patient(f"{study.patient_id}^^^&{settings.affinity_domain}&ISO")
    _storescu(settings, *study.files)

    published = publish_study(imaging_source(engine, settings), study.study_uid)
    assert published.instances == len(study.files) == 20

    entries = find_manifests(server + "/xds/registry", patient, study_uid=study.study_uid)
    assert [e.unique_id for e in entries] == [published.kos_sop_instance_uid]
    assert entries[0].mime_type == "application/dicom"

    out = tmp_path / "out"
    got = fetch(server + "/xds/registry", patient, out, study_uid=study.study_uid,
                sources={settings.imaging_source_unique_id: server + "/xds/imaging"},
                repositories={settings.repository_unique_id: server + "/xds/repository"})

    assert not got.errors and not got.missing
    assert len(got.files) == 20
    sent = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: f for f in study.files}
    for path in got.files:
        original = sent[path.stem]
        # storescu sends the dataset; the file meta is the receiver's: the dataset is identical.
        assert _dataset_bytes(path.read_bytes()) == _dataset_bytes(original.read_bytes())
        assert path.parent.parent.name == study.study_uid


def test_imported_files_come_back_byte_identical_through_xds_publish_and_fetch(
        tmp_path: Path, server: str, settings: Settings, new_patient: Callable[..., str]) -> None:
    study = make_study(tmp_path / "study", modalities=("MR",), per_series=4)
    patient = new_patient(f"{study.patient_id}^^^&{settings.affinity_domain}&ISO")
    env = {"XDS_DATA_DIR": str(settings.data_dir), "XDS_DATABASE_URL": settings.database_url,
           "XDS_PORT": str(settings.port), "XDS_BLOB_URL": settings.blob_url}
    runner = CliRunner()
    assert runner.invoke(cli, ["import-dicom", str(tmp_path / "study")], env=env).exit_code == 0
    published = runner.invoke(cli, ["publish", "--study", study.study_uid], env=env)
    assert published.exit_code == 0, published.output

    out = tmp_path / "out"
    fetched = runner.invoke(cli, ["imaging", "fetch", "--patient", patient,
                                  "--study", study.study_uid, "--out", str(out)], env=env)

    assert fetched.exit_code == 0, fetched.output
    saved = {p.stem: p.read_bytes() for p in out.rglob("*.dcm")}
    assert saved == {f.stem: f.read_bytes() for f in study.files}

    # Only the study UID known (a viewer launched from a report): ITI-51 across patients.
    by_study = tmp_path / "by-study"
    fetched = runner.invoke(cli, ["imaging", "fetch", "--study", study.study_uid,
                                  "--out", str(by_study)], env=env)
    assert fetched.exit_code == 0, fetched.output
    assert {p.stem for p in by_study.rglob("*.dcm")} == set(saved)


def test_fetch_without_patient_study_or_accession_is_a_usage_error(tmp_path: Path) -> None:
    run = CliRunner().invoke(cli, ["imaging", "fetch", "--out", str(tmp_path)])
    assert run.exit_code == 2
    assert "--patient, --study or --accession" in run.output


def test_fetch_by_an_unknown_study_without_patient_finds_nothing(
        server: str, settings: Settings, tmp_path: Path) -> None:
    env = {"XDS_PORT": str(settings.port)}
    run = CliRunner().invoke(cli, ["imaging", "fetch", "--study", "1.2.3.999999.1",
                                   "--out", str(tmp_path)], env=env)
    assert run.exit_code == 1
    assert "no imaging manifest found" in run.output
