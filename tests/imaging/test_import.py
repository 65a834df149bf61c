"""``xds import-dicom``: a directory of files into the Imaging Document Source, bad files reported."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.imaging.dicomgen import make_study
from xds.cli import app
from xds.config import Settings
from xds.store.db import read_connection
from xds.store.instances import find_instance, study_instances

runner = CliRunner()


def _store_options(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


def _bad_files(directory: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """A text file and a DICOM file cut inside its Pixel Data; and the latter's SOP Instance UID."""
    directory.mkdir(parents=True, exist_ok=True)
    text = directory / "notes.txt"
    text.write_text("not an image\n")
    one = make_study(tmp_path / "source", modalities=("CT",), per_series=1, rows=32, columns=32)
    data = one.files[0].read_bytes()
    truncated = directory / "cut.dcm"
    truncated.write_bytes(data[:len(data) - 32 * 32])  # half of the 32x32x2 bytes of pixels
    return text, truncated, one.instance_uids[0]


def test_import_stores_a_study_and_reports_bad_files(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "in" / "study" / "nested", modalities=("CT", "MR"),
                       per_series=4, series_per_modality=2, rows=32, columns=32)
    text, truncated, truncated_uid = _bad_files(tmp_path / "in" / "other", tmp_path)

    result = runner.invoke(app, ["import-dicom", str(tmp_path / "in"), *_store_options(settings)])

    assert result.exit_code == 0, result.output
    assert "stored 16 instance(s) in 1 study" in result.output
    assert "skipped 2 file(s) that are not DICOM" in result.output
    assert str(text) in result.output and str(truncated) in result.output
    assert "truncated" in result.output
    with read_connection(engine) as conn:
        stored = study_instances(conn, study.study_uid)
        assert find_instance(conn, truncated_uid) is None
    assert {i.sop_instance_uid for i in stored} == set(study.instance_uids)
    for series_uid, (modality, uids) in study.series.items():
        assert {i.modality for i in stored if i.series_instance_uid == series_uid} == {modality}
        assert len([i for i in stored if i.series_instance_uid == series_uid]) == len(uids)
    assert all(i.patient_id == study.patient_id for i in stored)
    # The files are copied, not moved.
    assert all(path.exists() for path in study.files)


def test_import_of_only_bad_files_fails_and_stores_nothing(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    _, _, truncated_uid = _bad_files(tmp_path / "bad", tmp_path)

    result = runner.invoke(app, ["import-dicom", str(tmp_path / "bad"), *_store_options(settings)])

    assert result.exit_code == 1, result.output
    assert "stored 0 instance(s) in 0 studies" in result.output
    assert "skipped 2 file(s)" in result.output
    with read_connection(engine) as conn:
        assert find_instance(conn, truncated_uid) is None


def test_import_of_an_empty_directory_succeeds(settings: Settings, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import-dicom", str(tmp_path), *_store_options(settings)])
    assert result.exit_code == 0, result.output
    assert "stored 0 instance(s)" in result.output
