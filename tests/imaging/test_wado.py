"""RAD-55 WADO-URI at the real server over HTTP: application/dicom byte-identical or converted,
HEAD, and the 400/404/406 answers (DICOM PS3.18 §9)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pydicom
import pytest
from sqlalchemy import Engine

from tests.imaging.dicomgen import make_study
from tests.imaging.retrieve_support import JPEG_BASELINE, Stored, store_jpeg_instance, store_study
from xds.app import imaging_source
from xds.config import Settings
from xds.dicom.uids import EXPLICIT_LE, IMPLICIT_LE
from xds.imaging.intake import store_file


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, engine: Engine, settings: Settings) -> Stored:
    return store_study(tmp_path_factory.mktemp("wado"), engine, settings)


def params(stored: Stored, series_index: int = 0, n: int = 0, **extra: str) -> dict[str, str]:
    return {"requestType": "WADO", "studyUID": stored.study.study_uid,
            "seriesUID": stored.series_uids[series_index],
            "objectUID": stored.sops(series_index)[n], **extra}


def wado(server: str, query: dict[str, str], method: str = "GET",
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.request(method, server + "/wado", params=query, headers=headers, timeout=30)


@pytest.mark.parametrize("content_type", [None, "application/dicom", "image/jpeg,application/dicom"])
def test_instance_is_returned_byte_identical(server: str, stored: Stored,
                                             content_type: str | None) -> None:
    extra = {"contentType": content_type} if content_type else {}
    response = wado(server, params(stored, 1, 2, **extra),
                    headers={"Accept": "application/dicom, */*;q=0.1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom"
    assert response.content == stored.content[stored.sops(1)[2]]
    assert int(response.headers["content-length"]) == len(response.content)


def test_transfer_syntax_implicit_le_is_converted(server: str, stored: Stored) -> None:
    response = wado(server, params(stored, contentType="application/dicom",
                                   transferSyntax=IMPLICIT_LE))
    assert response.status_code == 200, response.text
    ds = pydicom.dcmread(io.BytesIO(response.content))
    original = pydicom.dcmread(io.BytesIO(stored.content[stored.sops(0)[0]]))
    assert ds.file_meta.TransferSyntaxUID == IMPLICIT_LE
    assert ds.PixelData == original.PixelData
    assert int(response.headers["content-length"]) == len(response.content)


def test_head_has_the_headers_and_no_body(server: str, stored: Stored) -> None:
    response = wado(server, params(stored, 0, 1), method="HEAD")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "application/dicom"
    assert int(response.headers["content-length"]) == len(stored.content[stored.sops(0)[1]])


@pytest.mark.parametrize("change", [
    {"requestType": "WADO-RS"}, {"requestType": ""}, {"studyUID": ""}, {"seriesUID": " "},
    {"objectUID": ""}])
def test_bad_parameters_are_400(server: str, stored: Stored, change: dict[str, str]) -> None:
    assert wado(server, {**params(stored), **change}).status_code == 400


def test_missing_parameter_is_400(server: str, stored: Stored) -> None:
    query = params(stored)
    del query["objectUID"]
    assert wado(server, query).status_code == 400


@pytest.mark.parametrize("change", ["objectUID", "seriesUID", "studyUID"])
def test_unknown_or_misplaced_object_is_404(server: str, stored: Stored, change: str) -> None:
    query = params(stored)
    if change == "objectUID":
        query["objectUID"] += ".999"
    elif change == "seriesUID":
        query["seriesUID"] = stored.series_uids[1]
    else:
        query["studyUID"] = "1.2.3.4.5.6.7"
    assert wado(server, query).status_code == 404


def test_rendered_content_type_is_406(server: str, stored: Stored) -> None:
    response = wado(server, params(stored, contentType="image/jpeg"))
    assert response.status_code == 406
    assert "application/dicom" in response.text


def test_incompatible_accept_is_406(server: str, stored: Stored) -> None:
    response = wado(server, params(stored, contentType="application/dicom"),
                    headers={"Accept": "image/jpeg, text/html"})
    assert response.status_code == 406
    assert wado(server, params(stored), headers={"Accept": "application/*"}).status_code == 200


def test_unproducible_transfer_syntax_is_406(server: str, stored: Stored) -> None:
    response = wado(server, params(stored, transferSyntax=JPEG_BASELINE))
    assert response.status_code == 406


def test_compressed_instance_without_transfer_syntax_is_sent_as_stored(
        tmp_path: Path, server: str, engine: Engine, settings: Settings) -> None:
    study, series, sop, data = store_jpeg_instance(tmp_path, engine, settings)
    query = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop}
    response = wado(server, query)
    assert response.status_code == 200
    assert response.content == data
    assert wado(server, {**query, "transferSyntax": JPEG_BASELINE}).content == data
    assert wado(server, {**query, "transferSyntax": EXPLICIT_LE}).status_code == 406


def test_implicit_stored_instance_defaults_to_explicit_le(
        tmp_path: Path, server: str, engine: Engine, settings: Settings) -> None:
    study = make_study(tmp_path, modalities=("MR",), per_series=1, transfer_syntax=IMPLICIT_LE)
    store_file(imaging_source(engine, settings), study.files[0])
    (series, (_, (sop,))), = study.series.items()
    response = wado(server, {"requestType": "WADO", "studyUID": study.study_uid,
                             "seriesUID": series, "objectUID": sop})
    assert response.status_code == 200
    assert pydicom.dcmread(io.BytesIO(response.content)).file_meta.TransferSyntaxUID == EXPLICIT_LE
