"""The audit records of the Imaging Document Source at the real server: RAD-69, WADO-URI and
WADO-RS retrieves (DICOM Instances Transferred R, one record per outcome), C-STORE intake
(Instances Transferred C from the calling AE) and RAD-68 publication (Export R)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import Engine

from tests import samples, soapclient
from tests.audit.transactions_support import (
    DESTINATION, SOURCE, assert_client_source, assert_patient, assert_us, details, last_id, one,
    records,
)
from tests.imaging.dicomgen import make_study
from tests.imaging.retrieve_support import Stored, store_study
from tests.imaging.test_rad69 import items_of, rad69_request, send
from tests.repository.support import assert_failure
from xds.app import imaging_source
from xds.config import Settings
from xds.dicom.uids import EXPLICIT_LE
from xds.imaging.intake import store_file
from xds.imaging.publish import publish_study


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, engine: Engine, settings: Settings) -> Stored:
    return store_study(Path(tmp_path_factory.mktemp("audit-imaging")), engine, settings)


def _patient(stored: Stored, settings: Settings) -> str:
    return f"{stored.study.patient_id}^^^&{settings.patient_issuer}&ISO"


def test_rad69_partial_answer_gives_two_instances_transferred_records(
        server: str, engine: Engine, settings: Settings, stored: Stored) -> None:
    items = items_of(stored, settings, 0)
    study, series, repository = items[0][:3]
    missing = samples.new_oid()
    since = last_id(engine)
    reply = send(server, rad69_request([*items, (study, series, repository, missing)]))
    assert_failure(reply, "XDSDocumentUniqueIdError", soapclient.PARTIAL_SUCCESS)
    found = records(engine, since, "RAD-69")
    assert sorted(r.row.outcome for r in found) == [0, 8]
    for record in found:
        record.assert_event("110104", "R", record.row.outcome, "RAD-69",
                            "Retrieve Imaging Document Set")
        # This source sends the data; the consumer is the requestor.
        assert_us(record, "/xds/imaging", role=SOURCE)
        assert_client_source(record, role=DESTINATION)
        studies = record.objects("2", "3")
        assert {s.get("ParticipantObjectID") for s in studies} == {study}
        type_code = studies[0].find("ParticipantObjectIDTypeCode")
        assert type_code is not None and \
            (type_code.get("csd-code"), type_code.get("codeSystemName")) == ("110180", "DCM")
        sops = [details(s)["ihe:DocumentUniqueId"] for s in studies]
        if record.row.outcome == 0:
            assert sops == [i[3] for i in items]
            assert_patient(record, _patient(stored, settings))
            assert all(details(s)["Series Instance Unique Id"] == series for s in studies)
            assert all(details(s)["Repository Unique Id"] == repository for s in studies)
        else:
            assert sops == [missing]


def test_wado_uri_retrieve_is_rad55(server: str, engine: Engine, settings: Settings,
                                    stored: Stored) -> None:
    study, series = stored.study.study_uid, stored.series_uids[1]
    sop = stored.sops(1)[0]
    params = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop}
    since = last_id(engine)
    assert httpx.get(server + "/wado", params=params, timeout=30).status_code == 200
    record = one(records(engine, since, "RAD-55"))
    record.assert_event("110104", "R", 0, "RAD-55", "WADO Retrieve")
    assert_patient(record, _patient(stored, settings))
    [obj] = record.objects("2", "3")
    assert obj.get("ParticipantObjectID") == study
    assert details(obj)["ihe:DocumentUniqueId"] == sop
    client = record.participant(DESTINATION)
    assert (client.get("UserID"), client.get("UserIsRequestor")) == ("127.0.0.1", "true")
    assert_us(record, "/wado", role=SOURCE)

    since = last_id(engine)
    unknown = {**params, "objectUID": samples.new_oid()}
    assert httpx.get(server + "/wado", params=unknown, timeout=30).status_code == 404
    failed = one(records(engine, since, "RAD-55"))
    assert failed.row.outcome == 8
    assert "HTTP 404" in (failed.ident.findtext("EventOutcomeDescription") or "")


def test_wado_rs_series_retrieve_is_rad107(server: str, engine: Engine, settings: Settings,
                                           stored: Stored) -> None:
    study, series = stored.study.study_uid, stored.series_uids[0]
    since = last_id(engine)
    response = httpx.get(f"{server}/dicomweb/studies/{study}/series/{series}", timeout=30,
                         headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert response.status_code == 200
    record = one(records(engine, since, "RAD-107"))
    record.assert_event("110104", "R", 0, "RAD-107", "WADO-RS Retrieve")
    assert_patient(record, _patient(stored, settings))
    assert sorted(details(o)["ihe:DocumentUniqueId"] for o in record.objects("2", "3")) == \
        sorted(stored.sops(0))


def test_c_store_is_an_instances_transferred_create(engine: Engine, settings: Settings,
                                                    server: str, tmp_path: Path) -> None:
    study = make_study(tmp_path, modalities=("CT",), per_series=1)
    ae = AE(ae_title="AUDIT_SCU")
    ae.add_requested_context(CTImageStorage, [EXPLICIT_LE])
    since = last_id(engine)
    assoc = ae.associate("127.0.0.1", settings.dicom_port, ae_title=settings.dicom_ae_title)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(study.files[0])
    finally:
        assoc.release()
    assert status.Status == 0x0000
    record = one(records(engine, since, "RAD-8"))
    record.assert_event("110104", "C", 0, "RAD-8", "Modality Images Stored")
    modality = record.participant(SOURCE)
    assert (modality.get("UserID"), modality.get("UserIsRequestor"),
            modality.get("NetworkAccessPointID")) == ("AUDIT_SCU", "true", "127.0.0.1")
    ours = record.participant(DESTINATION)
    assert (ours.get("UserID"), ours.get("UserIsRequestor")) == (settings.dicom_ae_title, "false")
    assert_patient(record, f"{study.patient_id}^^^&{settings.patient_issuer}&ISO")
    [obj] = record.objects("2", "3")
    assert obj.get("ParticipantObjectID") == study.study_uid
    assert details(obj)["ihe:DocumentUniqueId"] == study.instance_uids[0]


def test_rad68_publication_is_an_export_to_the_repository(
        server: str, engine: Engine, settings: Settings, new_patient: Callable[..., str],
        tmp_path: Path) -> None:
    pid = new_patient()
    study = make_study(tmp_path / secrets.token_hex(4), patient_id=pid.split("^")[0],
                       per_series=1)
    source = imaging_source(engine, settings)
    for path in study.files:
        store_file(source, path)
    url = server + "/xds/repository"
    since = last_id(engine)
    publish_study(source, study.study_uid, repository_url=url)
    record = one(records(engine, since, "RAD-68"))
    record.assert_event("110106", "R", 0, "RAD-68",
                        "Provide and Register Imaging Document Set – MTOM/XOP")
    assert_patient(record, pid)
    assert len(record.objects("2", "20")) == 1
    us, repository = record.participant(SOURCE), record.participant(DESTINATION)
    assert (us.get("UserID") or "").endswith("/xds/imaging") and us.get("UserIsRequestor") == "true"
    assert (repository.get("UserID"), repository.get("UserIsRequestor")) == (url, "false")
    # The repository audited the same submission as an ITI-41 import.
    [imported] = records(engine, since, "ITI-41")
    assert imported.row.outcome == 0 and imported.row.patient == pid
