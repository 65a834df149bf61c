"""Publishing manifests (RAD-68 through the session server's repository and registry): found
with ITI-18, retrieved with ITI-43, replaced (RPLC) after the study changes, the departmental
patient id mapped through the PIX index, the quiet-period publisher, and ``xds publish``."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests import samples
from tests.imaging.dicomgen import GeneratedStudy, make_instance, make_study
from xds.app import imaging_source
from xds.cli import app
from xds.clients.consumer import DocumentConsumer, quote, quote_list
from xds.clients.retrieve import retrieve
from xds.config import Settings
from xds.ebrim.documententry import parse_document_entry
from xds.ebrim.vocabulary import Status, StoredQuery
from xds.imaging.context import ImagingSource
from xds.imaging.intake import store_file
from xds.imaging.kos import parse_manifest
from xds.imaging.publish import PublishError, PublishResult, publish_study
from xds.imaging.publisher import run_publisher
from xds.imaging.rad68 import FORMAT_CODE
from xds.model.metadata import DocumentEntry
from xds.model.values import CX, Code, LocalizedString
from xds.mpi.index import PatientIndex
from xds.mpi.model import Demographics, PatientIdentifier
from xds.store.db import migrate, open_engine, read_connection
from xds.store.instances import StudyState, study_state

#: Assigning authority of the departmental (DICOM) patient ids of the PIX tests.
DEPARTMENT = "1.2.826.0.1.3680043.8.498.4711"
runner = CliRunner()


@pytest.fixture
def source(engine: Engine, settings: Settings) -> ImagingSource:
    return imaging_source(engine, settings)


@pytest.fixture
def repository_url(server: str) -> str:
    return server + "/xds/repository"


def _study(source: ImagingSource, tmp_path: Path, patient_cx: str, **options: Any
           ) -> GeneratedStudy:
    """A CT+MR study stored in ``source`` for the patient ``patient_cx`` (its id value)."""
    cx = CX.parse(patient_cx)
    assert cx is not None
    study = make_study(tmp_path / secrets.token_hex(4), patient_id=cx.id, **options)
    for path in study.files:
        store_file(source, path)
    return study


@cache
def _consumer(registry_url: str) -> DocumentConsumer:
    return DocumentConsumer(registry_url)  # zeep reads the WSDL: seconds, so once


def _find(registry_url: str, patient_cx: str,
          statuses: tuple[str, ...] = (Status.Approved,)) -> list[DocumentEntry]:
    response = _consumer(registry_url).stored_query(StoredQuery.FindDocuments, [
        ("$XDSDocumentEntryPatientId", [quote(patient_cx)]),
        ("$XDSDocumentEntryStatus", [quote_list(list(statuses))]),
        ("$XDSDocumentEntryFormatCode", [quote_list([FORMAT_CODE.key])])])
    return [parse_document_entry(eo) for eo in response.iter(
        "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExtrinsicObject")]


def _state(source: ImagingSource, study_uid: str) -> StudyState:
    with read_connection(source.engine) as conn:
        state = study_state(conn, study_uid)
    assert state is not None
    return state


def _retrieved_uids(settings: Settings, repository_url: str, kos_uid: str,
                    out: Path) -> list[str]:
    answer = retrieve(repository_url, [(settings.repository_unique_id, kos_uid, None)], out)
    [document] = answer.documents
    assert document.mime_type == "application/dicom"
    manifest = parse_manifest(document.path)
    assert manifest.sop_instance_uid == kos_uid
    return [r.sop_instance_uid for r in manifest.references]


def test_a_published_manifest_is_found_and_retrieved(
    source: ImagingSource, settings: Settings, registry_url: str, repository_url: str,
    new_patient: Callable[..., str], tmp_path: Path
) -> None:
    pid = new_patient()
    study = _study(source, tmp_path, pid, per_series=2)

    result = publish_study(source, study.study_uid, repository_url=repository_url)

    assert isinstance(result, PublishResult) and not result.up_to_date
    assert result.instances == 4 and result.replaced_entry_uuid is None
    [de] = _find(registry_url, pid)
    assert de.entry_uuid == result.entry_uuid and de.unique_id == result.kos_sop_instance_uid
    assert de.mime_type == "application/dicom"
    assert de.format_code is not None and (de.format_code.code, de.format_code.scheme) == (
        "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")
    assert f"{study.study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID" in de.reference_id_list
    assert f"{study.accession}^^^^urn:ihe:iti:xds:2013:accession" in de.reference_id_list
    assert [(c.code, c.scheme) for c in de.event_codes] == [("CT", "DCM"), ("MR", "DCM")]
    assert de.patient_id == pid and de.source_patient_id == pid
    assert f"PID-3|{pid}" in de.source_patient_info and "PID-5|Doe^Jane" in de.source_patient_info
    assert "PID-7|19700101" in de.source_patient_info and "PID-8|F" in de.source_patient_info
    assert de.service_start_time == "20261201101500"
    assert de.title is not None and de.title.value.startswith("Manifest")
    assert de.class_code == Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", LocalizedString("Images"))
    assert de.repository_unique_id == settings.repository_unique_id
    state = _state(source, study.study_uid)
    assert not state.needs_publishing and state.last_error is None
    assert (state.kos_sop_instance_uid, state.kos_entry_uuid, state.patient_cx) == (
        result.kos_sop_instance_uid, result.entry_uuid, pid)

    uids = _retrieved_uids(settings, repository_url, result.kos_sop_instance_uid, tmp_path / "out")
    assert sorted(uids) == sorted(study.instance_uids)


def test_unchanged_study_is_up_to_date_and_a_new_instance_replaces_the_manifest(
    source: ImagingSource, settings: Settings, registry_url: str, repository_url: str,
    new_patient: Callable[..., str], tmp_path: Path
) -> None:
    pid = new_patient()
    study = _study(source, tmp_path, pid, modalities=("CT",), per_series=2)
    first = publish_study(source, study.study_uid, repository_url=repository_url)

    again = publish_study(source, study.study_uid, repository_url=repository_url)
    assert again.up_to_date and again.kos_sop_instance_uid == first.kos_sop_instance_uid
    assert again.entry_uuid == first.entry_uuid
    assert len(_find(registry_url, pid, (Status.Approved, Status.Deprecated))) == 1

    series_uid = next(iter(study.series))
    extra = make_instance(study_uid=study.study_uid, series_uid=series_uid, modality="CT",
                          number=3, patient_id=study.patient_id, accession=study.accession)
    path = tmp_path / "extra.dcm"
    extra.save_as(path, enforce_file_format=True)
    store_file(source, path)
    assert _state(source, study.study_uid).needs_publishing

    second = publish_study(source, study.study_uid, repository_url=repository_url)

    assert not second.up_to_date and second.replaced_entry_uuid == first.entry_uuid
    assert second.kos_sop_instance_uid != first.kos_sop_instance_uid and second.instances == 3
    found = {de.entry_uuid: de for de in _find(registry_url, pid,
                                               (Status.Approved, Status.Deprecated))}
    assert found[first.entry_uuid].availability_status == Status.Deprecated
    assert found[second.entry_uuid].availability_status == Status.Approved
    assert [de.entry_uuid for de in _find(registry_url, pid)] == [second.entry_uuid]
    uids = _retrieved_uids(settings, repository_url, second.kos_sop_instance_uid, tmp_path / "o")
    assert sorted(uids) == sorted([*study.instance_uids, str(extra.SOPInstanceUID)])


def test_unknown_patient_is_refused_and_recorded(
    source: ImagingSource, registry_url: str, repository_url: str, tmp_path: Path
) -> None:
    pid = samples.new_patient_id(source.settings.affinity_domain)  # never registered
    study = _study(source, tmp_path, pid, modalities=("CT",), per_series=1)

    with pytest.raises(PublishError, match="XDSUnknownPatientId"):
        publish_study(source, study.study_uid, repository_url=repository_url)

    assert _find(registry_url, pid, (Status.Approved, Status.Deprecated)) == []
    state = _state(source, study.study_uid)
    assert state.published_revision is None and state.kos_entry_uuid is None
    assert state.needs_publishing and state.last_error and "XDSUnknownPatientId" in state.last_error


def test_a_study_without_instances_is_not_published(
    source: ImagingSource, tmp_path: Path
) -> None:
    # An unreachable repository: anything sent would fail with a connection error instead.
    with pytest.raises(PublishError, match="has no instances"):
        publish_study(source, "1.2.826.0.1.3680043.8.498.999999",
                      repository_url="http://127.0.0.1:9/xds/repository")


def test_the_departmental_id_is_mapped_through_the_pix_index(
    source: ImagingSource, engine: Engine, settings: Settings, registry_url: str,
    repository_url: str, tmp_path: Path
) -> None:
    local = PatientIdentifier(DEPARTMENT, f"D{secrets.token_hex(5).upper()}")
    affinity = PatientIdentifier(settings.affinity_domain, f"A{secrets.token_hex(5).upper()}")
    PatientIndex(engine, settings).feed([local, affinity], Demographics(family="DOE", given="JANE"))
    study = make_study(tmp_path / "pix", modalities=("MR",), per_series=2,
                       patient_id=local.value, issuer=DEPARTMENT)
    for path in study.files:
        store_file(source, path)

    result = publish_study(source, study.study_uid, repository_url=repository_url)

    [de] = _find(registry_url, affinity.cx)
    assert de.entry_uuid == result.entry_uuid
    assert de.patient_id == affinity.cx and de.source_patient_id == local.cx
    assert f"PID-3|{local.cx}" in de.source_patient_info
    assert [c.code for c in de.event_codes] == ["MR"]
    assert _state(source, study.study_uid).patient_cx == affinity.cx


def test_a_departmental_id_without_link_is_refused(
    source: ImagingSource, repository_url: str, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "nolink", modalities=("CT",), per_series=1,
                       issuer="1.2.826.0.1.3680043.8.498.4712")
    for path in study.files:
        store_file(source, path)
    with pytest.raises(PublishError, match="no affinity-domain patient id"):
        publish_study(source, study.study_uid, repository_url=repository_url)
    assert _state(source, study.study_uid).last_error


def test_the_quiet_period_publisher_publishes_a_study(
    server: str, settings: Settings, registry_url: str, new_patient: Callable[..., str],
    tmp_path: Path
) -> None:
    # Its own instance index (a fresh SQLite database): the publisher sees only this study,
    # sends to the session server (same port) whose registry knows the patient.
    own = dataclasses.replace(settings, data_dir=tmp_path / "data", publish_quiet_seconds=0.5,
                              database_url=f"sqlite:///{tmp_path / 'ids.sqlite'}")
    engine = open_engine(own)
    try:
        migrate(engine)
        source = imaging_source(engine, own)
        pid = new_patient()
        study = _study(source, tmp_path, pid, modalities=("CT",), per_series=2)

        async def run() -> StudyState:
            task = asyncio.create_task(run_publisher(source))
            try:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    state = _state(source, study.study_uid)
                    if not state.needs_publishing or state.last_error:
                        return state
                return _state(source, study.study_uid)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        state = asyncio.run(run())
        assert state.last_error is None and not state.needs_publishing
        [de] = _find(registry_url, pid)
        assert de.entry_uuid == state.kos_entry_uuid and de.unique_id == state.kos_sop_instance_uid
    finally:
        engine.dispose()


def test_xds_publish_command(
    settings: Settings, source: ImagingSource, registry_url: str, repository_url: str,
    new_patient: Callable[..., str], tmp_path: Path
) -> None:
    options = ["--repository-url", repository_url, "--data-dir", str(settings.data_dir),
               "--database-url", settings.database_url]
    pid = new_patient()
    study = _study(source, tmp_path, pid, modalities=("CT",), per_series=2)

    done = runner.invoke(app, ["publish", "--study", study.study_uid, *options])
    assert done.exit_code == 0, done.output
    state = _state(source, study.study_uid)
    assert state.kos_sop_instance_uid and state.kos_sop_instance_uid in done.output
    assert "2 instances" in done.output and "replacing" not in done.output
    assert [de.unique_id for de in _find(registry_url, pid)] == [state.kos_sop_instance_uid]

    again = runner.invoke(app, ["publish", "--study", study.study_uid, *options])
    assert again.exit_code == 0 and "up to date" in again.output

    missing = runner.invoke(app, ["publish", "--study", "1.2.826.0.1.3680043.8.498.1", *options])
    assert missing.exit_code == 1 and "has no instances" in missing.output
