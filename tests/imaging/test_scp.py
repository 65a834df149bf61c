"""The C-STORE SCP over real TCP: dcmtk storescu and pynetdicom against the session server."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, _config
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage, MRImageStorage, Verification,
)
from sqlalchemy import Engine

from tests.imaging.dcmtk import dcmtk
from tests.imaging.dicomgen import CT_IMAGE, MR_IMAGE, UID_ROOT, make_instance, make_study
from xds.config import Settings
from xds.dicom.uids import EXPLICIT_LE, IMPLICIT_LE
from xds.store.blobs import open_blob_store
from xds.store.db import read_connection
from xds.store.instances import Instance, find_instance, study_instances



def _storescu(settings: Settings, *files: Path, options: tuple[str, ...] = ()) -> None:
    result = subprocess.run(
        [dcmtk("storescu"), "-aec", settings.dicom_ae_title, "-aet", "TEST_SCU", *options,
         "127.0.0.1", str(settings.dicom_port), *map(str, files)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _dataset_bytes(part10: bytes) -> bytes:
    """The bytes after the file meta group of a Part-10 file."""
    assert part10[128:132] == b"DICM"
    # (0002,0000) UL, explicit VR little endian: tag, "UL", length 4, the group length.
    assert part10[132:138] == b"\x02\x00\x00\x00UL"
    (group_length,) = struct.unpack("<L", part10[140:144])
    return part10[144 + group_length:]


def _study(engine: Engine, study_uid: str) -> list[Instance]:
    with read_connection(engine) as conn:
        return study_instances(conn, study_uid)


def _association(settings: Settings, called: str | None = None) -> Association:
    ae = AE(ae_title="TEST_SCU")
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, [EXPLICIT_LE])
    ae.add_requested_context(MRImageStorage, [EXPLICIT_LE])
    return ae.associate("127.0.0.1", settings.dicom_port, ae_title=called or settings.dicom_ae_title)


def _no_spooled_files(settings: Settings) -> bool:
    return not list(settings.spool_dir.glob("*.dcm"))


def test_storescu_study_of_200_instances_is_indexed_byte_identical(
    server: str, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "study", modalities=("CT", "MR"), per_series=50,
                       series_per_modality=2, rows=32, columns=32)
    assert len(study.files) == 200
    _storescu(settings, tmp_path / "study", options=("+sd",))

    stored = _study(engine, study.study_uid)
    assert len(stored) == 200
    by_uid = {i.sop_instance_uid: i for i in stored}
    assert set(by_uid) == set(study.instance_uids)
    for series_uid, (modality, uids) in study.series.items():
        for uid in uids:
            instance = by_uid[uid]
            assert instance.series_instance_uid == series_uid
            assert instance.modality == modality
            assert instance.patient_id == study.patient_id
            assert instance.accession_number == study.accession
            assert instance.transfer_syntax_uid == EXPLICIT_LE
    blobs = open_blob_store(settings)
    for path in study.files:
        instance = by_uid[path.stem]
        assert instance.sha256 is not None
        stored_bytes = b"".join(blobs.open(instance.sha256))
        assert instance.size == len(stored_bytes)
        assert _dataset_bytes(stored_bytes) == _dataset_bytes(path.read_bytes())
    assert _no_spooled_files(settings)


def test_c_echo(server: str, settings: Settings) -> None:
    assoc = _association(settings)
    assert assoc.is_established
    try:
        status = assoc.send_c_echo()
        assert status.Status == 0x0000
    finally:
        assoc.release()


def test_implicit_vr_transfer_is_stored_as_implicit_vr(
    server: str, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    study = make_study(tmp_path, modalities=("MR",), per_series=2, rows=32, columns=32)
    _storescu(settings, *study.files, options=("-xi",))
    stored = _study(engine, study.study_uid)
    assert {i.sop_instance_uid for i in stored} == set(study.instance_uids)
    assert {i.transfer_syntax_uid for i in stored} == {IMPLICIT_LE}


def test_wrong_called_ae_title_is_rejected(server: str, settings: Settings) -> None:
    assoc = _association(settings, called="NOT_" + settings.dicom_ae_title)
    assert assoc.is_rejected


def _instance(rows: int = 32) -> Dataset:
    series = generate_uid(prefix=UID_ROOT)
    return make_instance(study_uid=generate_uid(prefix=UID_ROOT), series_uid=series, modality="CT",
                         number=1, patient_id="NEG1", accession="ACCNEG", rows=rows, columns=rows)


def _send(settings: Settings, dataset: Dataset | Path) -> int:
    assoc = _association(settings)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(dataset)
        return int(status.Status)
    finally:
        assoc.release()


@pytest.mark.parametrize("mismatch", ["instance", "class"])
def test_dataset_disagreeing_with_the_request_is_refused(
    server: str, engine: Engine, settings: Settings, tmp_path: Path, mismatch: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = _instance()
    path = tmp_path / "mismatch.dcm"
    ds.save_as(path, enforce_file_format=True)
    # pydicom writes the file meta from the dataset: patch its first UID (in the meta) to
    # another of the same length.
    if mismatch == "instance":
        uid = str(ds.SOPInstanceUID)
        other = uid[:-1] + str((int(uid[-1]) + 1) % 10)
    else:
        uid, other = CT_IMAGE, MR_IMAGE
    data = path.read_bytes()
    path.write_bytes(data.replace(uid.encode(), other.encode(), 1))
    # Sending a file in chunks, pynetdicom takes the request's affected SOP Class/Instance
    # from its meta, without decoding the dataset.
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    assert _send(settings, path) == 0xA900
    with read_connection(engine) as conn:
        assert find_instance(conn, str(ds.SOPInstanceUID)) is None
        assert find_instance(conn, other) is None
    assert _no_spooled_files(settings)


def test_dataset_without_study_uid_is_refused(
    server: str, engine: Engine, settings: Settings
) -> None:
    ds = _instance()
    del ds.StudyInstanceUID
    assert _send(settings, ds) == 0xA900
    with read_connection(engine) as conn:
        assert find_instance(conn, str(ds.SOPInstanceUID)) is None
    assert _no_spooled_files(settings)


def test_sending_an_instance_twice_keeps_one_row(
    server: str, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    study = make_study(tmp_path, modalities=("CT",), per_series=1, rows=32, columns=32)
    _storescu(settings, study.files[0])
    _storescu(settings, study.files[0])
    assert _send(settings, study.files[0]) == 0x0000
    stored = _study(engine, study.study_uid)
    assert [i.sop_instance_uid for i in stored] == study.instance_uids


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_dataset_is_refused_as_not_understood(
    server: str, engine: Engine, settings: Settings, tmp_path: Path, keep: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = _instance(rows=64)
    path = tmp_path / "cut.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    # Cut inside the Pixel Data (a transfer broken off): the meta still names the instance.
    path.write_bytes(data[:int(len(data) * keep)])
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    assert _send(settings, path) == 0xC210
    with read_connection(engine) as conn:
        assert find_instance(conn, str(ds.SOPInstanceUID)) is None
    assert _no_spooled_files(settings)
